import sys

from qemu_errata.cli import main

sys.exit(main())
