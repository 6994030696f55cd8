import sys

from qemu_errata.commands.main import main

sys.exit(main())
