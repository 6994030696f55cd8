"""The ``qemu-errata nested`` command: run a qemu-errata command on a nested arm64 KVM host."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command, command_parser
from qemu_errata.commands.arguments import InputFile, add_timeout_option, positive_timeout
from qemu_errata.core.embedded import embedded_profile_names
from qemu_errata.errors import ExitStatus, InputError, NestedError
from qemu_errata.files import write_atomically
from qemu_errata.nested.boot import (
    DEFAULT_MEMORY_MIB,
    DEFAULT_TIMEOUT_SECONDS,
    NestedBootError,
    check_cpu_model,
    host_name,
    run_nested,
)
from qemu_errata.nested.carry import Transfer, plan_transfer
from qemu_errata.nested.guest_userspace import pinned_busybox
from qemu_errata.nested.image import (
    DEFAULT_KERNEL,
    KERNELS,
    NestedImage,
    kernel_series,
    load_image,
    rebuild_image,
)
from qemu_errata.nested.progress import BootProgress
from qemu_errata.nested.qemu_layer import QemuLayer, load_layer, rebuild_layer

# The nested host itself failed (not the command run in it), as env(1) and
# timeout(1) report their own failures; 0, 1 and 2 belong to the command.


# The commands that need nothing beyond Python's standard library, so they run inside.
RUNS_INSIDE = frozenset(
    {
        "baseline",
        "check",
        "errata",
        "guest-view",
        "kvm-validate",
        "probe",
        "profiles",
        "qemu-check",
        "show",
    }
)
# The commands that boot the nested host's own kernel as their guest: it is carried in.
BOOTS_A_GUEST = frozenset({"guest-view", "qemu-check"})
# The commands that run Debian's QEMU inside: the QEMU layer is added, and memory for its VM.
NEEDS_QEMU = frozenset({"qemu-check"})
_MEMORY_WITH_QEMU_MIB = 2048
# Shown by --help: plain text, as a terminal shows it.
DESCRIPTION = """\
qemu-errata nested --cpu MODEL [--kernel 6.12|7.2|7.3] -- ARGS boots a nested arm64
KVM host and exits with the status of 'qemu-errata ARGS' run there. Its output
streams are passed through, files named in ARGS are carried in and -o files come
back out, and one line on stderr names the CPU model, the kernel and the package
versions of the image. --rebuild resolves the newest packages and builds the image
anew first; alone, it only builds. --with-qemu adds Debian's arm64 QEMU (a pinned
version, cached apart; qemu-check always has it)."""


def register(commands: Subcommands) -> None:
    """Register ``nested`` on the ``qemu-errata`` subcommands."""
    sub = add_command(
        commands,
        "nested",
        description=DESCRIPTION,
    )
    sub.add_argument(
        "--cpu",
        metavar="MODEL",
        help="QEMU CPU model of the nested host (required, except with --rebuild alone)",
    )
    sub.add_argument(
        "--kernel", choices=sorted(KERNELS), default=DEFAULT_KERNEL, help="Linux series to boot"
    )
    add_timeout_option(sub, DEFAULT_TIMEOUT_SECONDS, "give up (and stop QEMU) after this long")
    sub.add_argument(
        "--rebuild", action="store_true", help="resolve the newest packages and rebuild the image"
    )
    sub.add_argument(
        "--with-qemu",
        action="store_true",
        help="add Debian's arm64 qemu-system-aarch64 to the nested host (with --rebuild: "
        "rebuild that layer too)",
    )
    sub.add_argument(
        "--verbose",
        action="store_true",
        help="narrate the run on stderr: the image, the QEMU command, the kernel's console, "
        "when the command starts and ends inside",
    )
    sub.add_argument(
        "arguments", nargs=argparse.REMAINDER, metavar="-- ARGS", help="the qemu-errata command"
    )
    sub.set_defaults(run=run_nested_command)


def run_nested_command(args: argparse.Namespace) -> int:
    arguments = list(args.arguments)
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    if not arguments and not args.rebuild:
        raise InputError("nested: give the qemu-errata command after --, or --rebuild")
    if arguments and not args.cpu:
        raise InputError("nested: --cpu MODEL: missing")
    positive_timeout(args.timeout)
    if arguments:
        arguments = _with_guest_busybox(arguments)
        _check_command(arguments)
    transfer = plan_transfer(arguments) if arguments else Transfer()
    try:
        if arguments:
            check_cpu_model(args.cpu)
        image = _image(args.kernel, args.rebuild)
        with_qemu = args.with_qemu or arguments[:1] in [[name] for name in NEEDS_QEMU]
        layer = None
        if with_qemu:
            layer = rebuild_layer() if args.rebuild else load_layer()
        if not arguments:
            built = image.describe() + ("" if layer is None else f", {layer.describe()}")
            print(f"qemu-errata nested: built {built}")
            return ExitStatus.OK
        return _run(image, layer, args.cpu, transfer, args.timeout, verbose=args.verbose)
    except NestedBootError as error:
        print(f"qemu-errata nested: {error}", file=sys.stderr)
        for line in error.console_tail():
            print(f"  console: {line}", file=sys.stderr)
        return error.exit_status
    except NestedError as error:
        print(f"qemu-errata nested: {error}", file=sys.stderr)
        return error.exit_status


def _with_guest_busybox(arguments: list[str]) -> list[str]:
    """guest-view's guest gets the pinned busybox (data/guest-userspace.toml) unless the
    command names one."""
    if arguments[0] != "guest-view" or "--busybox" in arguments:
        return arguments
    return [*arguments, "--busybox", str(pinned_busybox())]


def _check_command(arguments: list[str]) -> None:
    """Refuse, before a boot, a command the nested host cannot run or whose files are missing."""
    name = arguments[0]
    if name not in RUNS_INSIDE:
        raise InputError(
            f"nested: {name!r} cannot run in the nested host (it has Python's standard library "
            f"only); it runs: {', '.join(sorted(RUNS_INSIDE))}"
        )
    parsed = command_parser(name).parse_args(arguments[1:])
    for key, value in vars(parsed).items():
        for path in value if isinstance(value, list) else [value]:
            if key == "output" or not isinstance(path, Path | InputFile):
                continue
            if not _readable_argument(path):
                raise InputError(f"nested: {name} {path}: no such file")


def _readable_argument(path: Path | InputFile) -> bool:
    return os.path.exists(path) or ("/" not in str(path) and str(path) in embedded_profile_names())


def _image(kernel: str, rebuild: bool) -> NestedImage:
    series = kernel_series(kernel)
    return rebuild_image(series) if rebuild else load_image(series)


def _run(
    image: NestedImage,
    layer: QemuLayer | None,
    cpu: str,
    transfer: Transfer,
    timeout: float,
    *,
    verbose: bool,
) -> int:
    layers = [] if layer is None else [layer.archive]
    described = image.describe() + ("" if layer is None else f", {layer.describe()}")
    progress = _progress(host_name(cpu, image), transfer.argv[0], verbose)
    if progress is not None:
        progress.image(described)
    result = run_nested(
        image,
        cpu,
        transfer.argv,
        inputs=transfer.inputs,
        outputs=list(transfer.outputs),
        timeout=timeout,
        carry_kernel=transfer.argv[0] in BOOTS_A_GUEST,
        layers=layers,
        memory_mib=DEFAULT_MEMORY_MIB if layer is None else _MEMORY_WITH_QEMU_MIB,
        watcher=progress,
    )
    for inside, data in result.files.items():
        write_atomically(transfer.outputs[inside], data)
    sys.stdout.buffer.write(transfer.outside_names(result.stdout))
    sys.stdout.flush()
    sys.stderr.buffer.write(transfer.outside_names(result.stderr))
    print(
        f"qemu-errata nested: ran on a {cpu} host, {described}, in {result.seconds:.1f} s",
        file=sys.stderr,
    )
    return result.exit_status


def _progress(host: str, command: str, verbose: bool) -> BootProgress | None:
    """Narration with --verbose; on a terminal, one line kept up to date; else silence."""
    if verbose or sys.stderr.isatty():
        return BootProgress(sys.stderr, host, command, verbose=verbose)
    return None
