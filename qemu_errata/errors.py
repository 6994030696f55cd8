"""Every error this package raises on purpose, and the exit status each branch means.

The tree (exit status of the ``qemu-errata`` command in brackets)::

    QemuErrataError                  [3]  internal: a bug, never a verdict
    ├── InputError                   [2]  bad input: one line naming the input and the problem
    │   ├── CatalogueError                our register or CPU data files are inconsistent
    │   ├── UnknownKernelError            a guest kernel release the errata table does not know
    │   ├── ProfileError                  a host profile or pool model is malformed
    │   ├── ProbeError                    a probe cannot read its host (/dev/kvm, QEMU, sysfs)
    │   ├── LibvirtError                  libvirt cannot do what was asked
    │   ├── QmpError                      a QEMU monitor cannot be reached or does not answer
    │   │   └── QmpCommandError           QEMU answered a command with an error
    │   ├── ConfigError                   the hook configuration is unusable
    │   ├── SysfsError                    this host's CPU identity cannot be read
    │   ├── DomainXmlError                a domain XML or its pool metadata is malformed
    │   └── DomainRunningError            (usage) a running domain to redefine, without --next-boot
    ├── RefusalError               [1]  the answer is "no"; the message says why
    │   ├── IncompatiblePoolError         no model is presentable on every host
    │   ├── NoPartitionError              no partition of the hosts into N pools exists
    │   ├── UnsupportedDialectError       a QEMU lacks what a dialect needs
    │   ├── UnsettableFieldsError         no property of the VMM sets some of a model's fields
    │   └── GuestBootError                (probe.guest_boot) a guest did not detect its CPU in time
    ├── NestedError                [125]  the nested host could not run the command
    │   ├── ImageBuildError               fetching or unpacking its Debian packages failed
    │   └── BootError                     QEMU or the kernel did not get there in time
    │       ├── NestedBootError           (nested.boot) a boot that gave no result, with its console
    │       └── FleetError                (nested.fleet) a fleet host did not boot or answer
    ├── SourcesError                 [3]  (errata_sync.sources) a pinned Debian kernel package
    │                                     could not be fetched or unpacked (scripts/errata-sync)
    └── TestBedError                 [3]  the test bed cannot be set up or torn down

Classes defined elsewhere name their module in brackets; a test compares this
drawing with the subclasses the package defines. Private protocol errors of
one module (a gdbstub reply, a guest's MMIO exit) never leave their module:
they become one of these first.
"""

from __future__ import annotations

# Nothing imported at run time: the libvirt hook loads this module on its
# timed path, where typing alone would cost 6 ms and enum 2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import ClassVar, Final, Protocol

    class Blocking(Protocol):
        """One reason for a negative answer: where, which key, each value, in words."""

        @property
        def register(self) -> str: ...
        @property
        def field(self) -> str | None: ...
        @property
        def reason(self) -> str: ...
        @property
        def values(self) -> Mapping[str, str]: ...
        @property
        def message(self) -> str: ...


class ExitStatus:
    """What the ``qemu-errata`` command's exit status means (the only place it is said)."""

    OK: Final = 0
    NO: Final = 1
    BAD_INPUT: Final = 2
    INTERNAL: Final = 3
    NESTED_HOST_FAILED: Final = 125
    # Interrupted (Ctrl-C, SIGTERM, SIGHUP): this plus the signal number, as shells report it.
    SIGNALLED: Final = 128
    # The reader of our output went away (``| head -1``): 128 + SIGPIPE, no message.
    OUTPUT_CLOSED: Final = 141


class QemuErrataError(Exception):
    """Base class of the errors this package raises on purpose."""

    exit_status: ClassVar[int] = ExitStatus.INTERNAL


class InputError(QemuErrataError):
    """Bad input (a file, an argument, a catalogue entry).

    The message is one line that names the input and what is wrong with it.
    """

    exit_status = ExitStatus.BAD_INPUT


class CatalogueError(InputError):
    """The register catalogue or CPU names data file is inconsistent."""


class UnknownKernelError(InputError):
    """A guest kernel release the errata table does not know."""


class ProfileError(InputError):
    """A host profile or pool model file is malformed."""


class ProbeError(InputError):
    """A host probe cannot read its host (no /dev/kvm, QEMU died or hung).

    The message names what was probed (/dev/kvm, a QEMU CPU model, a sysfs
    tree) and what went wrong, in one line; no profile is written.
    """


class LibvirtError(InputError):
    """libvirt cannot do what was asked: names the connection, the domain and why."""


class QmpError(InputError):
    """The monitor cannot be reached or does not answer: names the monitor and why."""


class QmpCommandError(QmpError):
    """QEMU answered a command with an error (e.g. an unknown QOM type)."""


class ConfigError(InputError):
    """The hook configuration file is unreadable or has a bad key or value."""


class SysfsError(InputError):
    """The host's CPU identity could not be read from sysfs."""


class DomainXmlError(InputError):
    """The domain XML, or the pool metadata in it, is malformed."""


class RefusalError(QemuErrataError):
    """The question was answered, and the answer is no."""

    exit_status = ExitStatus.NO


class IncompatiblePoolError(RefusalError):
    """No model is presentable on every host; ``blockers`` says every reason."""

    def __init__(self, blockers: Sequence[Blocking]) -> None:
        super().__init__("; ".join(b.message for b in blockers))
        self.blockers = tuple(blockers)


class NoPartitionError(RefusalError):
    """No partition of the hosts into the pools asked for exists (``plan --pools N``);
    ``blockers`` says why types that cannot share a pool pairwise cannot."""

    def __init__(self, message: str, blockers: Sequence[Blocking] = ()) -> None:
        super().__init__(message)
        self.blockers = tuple(blockers)


class UnsupportedDialectError(RefusalError):
    """A QEMU lacks what a dialect needs; ``missing`` names each thing."""

    def __init__(self, dialect: str, missing: Sequence[str]) -> None:
        super().__init__(f"{dialect} is not supported by this QEMU; missing: {'; '.join(missing)}")
        self.missing = tuple(missing)


class UnsettableFieldsError(RefusalError):
    """A model gives ID register fields that no property of the VMM sets; ``fields`` names each."""

    def __init__(self, dialect: str, fields: Sequence[str], names: str) -> None:
        super().__init__(
            f"{dialect} cannot present this model: no property sets {', '.join(fields)} "
            f"(looked for {names})"
        )
        self.fields = tuple(fields)


class DomainRunningError(InputError):
    """A usage error: the domain runs and the caller did not ask to stage the change for its
    next boot (``--next-boot``)."""


class NestedError(QemuErrataError):
    """The nested host could not run the command (the command itself did not fail)."""

    exit_status = ExitStatus.NESTED_HOST_FAILED


class ImageBuildError(NestedError):
    """Fetching or unpacking the Debian packages of the nested host failed."""


class BootError(NestedError):
    """QEMU did not start, the kernel did not boot, or no result came back in time."""


class TestBedError(QemuErrataError):
    """The test bed cannot be set up or torn down (the message says why)."""

    __test__ = False  # not a pytest test class
