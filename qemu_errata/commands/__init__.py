"""The command line: one module per command group, each with ``register(commands)``."""

import argparse
from typing import TypeAlias

# A string: argparse's action class is not subscriptable at run time.
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
