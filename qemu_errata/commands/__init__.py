"""The command line: one module per command group, each with ``register(commands)``.

COMMANDS names each command, the module that registers it and its one-line
help, in the order ``--help`` lists them (a module's commands together, in the
order it registers them): the ``qemu-errata`` command imports only the module
of the command it runs, and lists the others from here.
"""

from __future__ import annotations

import argparse
import importlib

# typing is not imported at run time: --version would pay for it (see bench/cli_startup.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subcommands = argparse._SubParsersAction

COMMANDS: dict[str, tuple[str, str]] = {
    "baseline": ("pool", "compute the pool model of host profiles"),
    "check": ("pool", "can this host present this pool model"),
    "can-migrate": (
        "can_migrate",
        "would the hook on a host let a pool VM migrate in (no libvirt needed)",
    ),
    "errata": (
        "errata",
        "the errata workarounds a pool's guests enable, and what each host type adds",
    ),
    "plan": ("plan", "which host types can share a pool, and the pools to form"),
    "show": ("show", "a host profile or pool model in readable form"),
    "profiles": ("show", "list the embedded host profiles"),
    "render": ("vmm", "QEMU arguments or domain XML presenting a model"),
    "apply": ("vmm", "apply a model to a defined libvirt domain"),
    "unapply": ("vmm", "take the pool model off a defined libvirt domain, its own <cpu> back"),
    "verify": ("vmm", "compare a running VM with a model over QMP"),
    "nested": ("nested", "run a qemu-errata command on a nested arm64 KVM host (QEMU TCG)"),
    "nested-migrate": (
        "nested_migrate",
        "migrate a running guest live between two nested arm64 KVM hosts",
    ),
    "hook": ("hook", "install, remove or check the libvirt hook script and its configuration"),
    "probe": ("probe", "write this host's profile (or a QEMU CPU model's)"),
    "demo": (
        "demo",
        "the end-to-end walk-through (root; a few seconds, 10 more with a nested image)",
    ),
    "kvm-validate": (
        "kvm_validate",
        "let this host's KVM judge whether it can present pool models",
    ),
    "guest-view": ("guest_view", "boot a Linux guest presenting a pool model: what does it enable"),
    "qemu-check": (
        "qemu_check",
        "start a real QEMU under KVM with what render gives for a model, and verify it",
    ),
}


def add_command(commands: Subcommands, name: str, **options: Any) -> argparse.ArgumentParser:
    """Add the parser of command ``name`` with its help from COMMANDS."""
    return commands.add_parser(name, help=COMMANDS[name][1], **options)


def command_parser(name: str) -> argparse.ArgumentParser:
    """Command ``name``'s own parser, complete (its module imported now): for a command
    that checks another's arguments, as ``nested`` does before it boots."""
    commands = argparse.ArgumentParser(prog="qemu-errata").add_subparsers()
    importlib.import_module(f"qemu_errata.commands.{COMMANDS[name][0]}").register(commands)
    return commands.choices[name]
