"""The ``qemu-errata`` command line: one parser; the module of the command run registers it.

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
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from qemu_errata import __version__
from qemu_errata.commands import COMMANDS
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


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command``'s module alone.

    Start-up: a command imports only its own module, and the others get no parser (one
    costs a short command a few per cent); without a known command they are only named
    (with their help, from COMMANDS), which is all ``--help`` shows of them.
    """
    parser = argparse.ArgumentParser(
        prog="qemu-errata",
        description="Safe live migration of arm64 KVM guests across different hosts.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.add_argument("--version", action="version", version=f"qemu-errata {__version__}")
    wanted = COMMANDS[command][0] if command in COMMANDS else None
    registered: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if wanted is not None and module != wanted:
            continue
        if command is not None and module != wanted:
            commands.add_parser(name, help=help_text)
        elif module not in registered:
            importlib.import_module(f"qemu_errata.commands.{module}").register(commands)
            registered.add(module)
    return parser


def _command_word(argv: Sequence[str]) -> str:
    """The command ``argv`` names ("" if none): its first word that is not an option."""
    return next((word for word in argv if not word.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    command = _command_word(words)
    if command:  # a command's options may name what a table holds (--vmm); --version reads none
        from qemu_errata import table_copies  # noqa: PLC0415 (json: not for --version)

        table_copies.install()
    args = build_parser(command).parse_args(words)
    run: Command = args.run
    previous = {number: signal.signal(number, _raise_signalled) for number in _TERMINATING}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when ignored
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, _raise_interrupted)
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
        _quiet_unwinding()
        return _fail(f"terminated by {signalled}", ExitStatus.SIGNALLED + signalled.number)
    except KeyboardInterrupt:
        _quiet_unwinding()
        return _fail("interrupted", ExitStatus.SIGNALLED + signal.SIGINT)
    except Exception as error:  # the one place where a bug becomes status 3, not a verdict
        # Imported here: start-up pays for neither (see bench/cli_startup.py).
        import traceback  # noqa: PLC0415

        from qemu_errata.core.document import one_line  # noqa: PLC0415

        if args.debug:
            traceback.print_exc()
        problem = one_line(f"internal error: {type(error).__name__}: {error}")
        hint = "" if args.debug else " (run with --debug for the traceback)"
        return _fail(problem + hint, ExitStatus.INTERNAL)


def _quiet_unwinding() -> None:
    """After a signal, the one line says it all: no "exception was never retrieved" traceback
    from asyncio and no "coroutine was never awaited" warning for work the signal cut short
    (it can land inside asyncio.run's own cleanup)."""
    import warnings  # noqa: PLC0415 (not for a command that runs to its end)

    warnings.simplefilter("ignore")
    logging = sys.modules.get("logging")  # asyncio imports it; without asyncio, nothing to do
    if logging is not None:
        logging.getLogger("asyncio").disabled = True


def _raise_signalled(number: int, frame: FrameType | None) -> None:
    _quiet_unwinding()  # from here on: the unwinding collects cancelled futures, which log
    raise _Signalled(number)


def _raise_interrupted(number: int, frame: FrameType | None) -> None:
    _quiet_unwinding()
    raise KeyboardInterrupt


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
