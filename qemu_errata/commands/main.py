"""The ``qemu-errata`` command line: one parser, every command module registers itself.

The exit status is decided here and nowhere else: a command returns one of
``ExitStatus``; an error raised on purpose carries its own (see errors.py);
anything else is an internal error, one line, status 3 (``--debug`` shows the
traceback). Ctrl-C, SIGTERM and SIGHUP end the command through its cleanup
(temporary files and directories, child processes) with one line and status
128 + the signal number, as a shell reports a killed command. A closed output
pipe (``qemu-errata baseline ... | head -1``) is not an error of ours: no
message, status 141 (128 + SIGPIPE), never a verdict.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from types import FrameType

from qemu_errata import __version__
from qemu_errata.commands import (
    demo,
    errata,
    guest_view,
    hook,
    kvm_validate,
    nested,
    nested_migrate,
    plan,
    pool,
    probe,
    qemu_check,
    show,
    vmm,
)
from qemu_errata.core.document import one_line
from qemu_errata.errors import ExitStatus, QemuErrataError

Command = Callable[[argparse.Namespace], int]


class _Signalled(KeyboardInterrupt):
    """A termination signal arrived: unwind through every cleanup, then exit.

    A KeyboardInterrupt, because that is what asyncio and other libraries
    re-raise untouched (any other BaseException they log as a fatal error).
    """

    def __init__(self, number: int) -> None:
        super().__init__(signal.Signals(number).name)
        self.number = number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qemu-errata",
        description="Safe live migration of arm64 KVM guests across different hosts.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.add_argument("--version", action="version", version=f"qemu-errata {__version__}")
    for module in (
        pool,
        errata,
        plan,
        show,
        vmm,
        nested,
        nested_migrate,
        hook,
        probe,
        demo,
        kvm_validate,
        guest_view,
        qemu_check,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    previous = {number: signal.signal(number, _raise_signalled) for number in _TERMINATING}
    try:
        return _run(run, args)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


_TERMINATING = (signal.SIGTERM, signal.SIGHUP)


def _run(run: Command, args: argparse.Namespace) -> int:
    try:
        status = run(args)
        sys.stdout.flush()  # a closed pipe shows here, not after main() returned
        return status
    except BrokenPipeError:
        return _output_closed()
    except QemuErrataError as error:
        return _fail(str(error), error.exit_status)
    except _Signalled as signalled:
        _quiet_asyncio()
        return _fail(f"terminated by {signalled}", ExitStatus.SIGNALLED + signalled.number)
    except KeyboardInterrupt:
        _quiet_asyncio()
        return _fail("interrupted", ExitStatus.SIGNALLED + signal.SIGINT)
    except Exception as error:  # the one place where a bug becomes status 3, not a verdict
        if args.debug:
            traceback.print_exc()
        problem = one_line(f"internal error: {type(error).__name__}: {error}")
        hint = "" if args.debug else " (run with --debug for the traceback)"
        return _fail(problem + hint, ExitStatus.INTERNAL)


def _quiet_asyncio() -> None:
    """No "Task exception was never retrieved" traceback at exit for tasks the signal cut short."""
    logging.getLogger("asyncio").disabled = True


def _raise_signalled(number: int, frame: FrameType | None) -> None:
    raise _Signalled(number)


def _fail(message: str, status: int) -> int:
    with contextlib.suppress(BrokenPipeError):  # stderr is gone too: the status says it
        print(f"qemu-errata: {message}", file=sys.stderr)
    return status


def _output_closed() -> int:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return ExitStatus.OUTPUT_CLOSED
