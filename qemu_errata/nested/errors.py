"""Errors of the nested arm64 KVM host."""

from qemu_errata.errors import QemuErrataError


class NestedError(QemuErrataError):
    """The nested host could not run the command (the command itself did not fail)."""


class ImageBuildError(NestedError):
    """Fetching or unpacking the Debian packages of the nested host failed."""


class BootError(NestedError):
    """QEMU did not start, the kernel did not boot, or no result came back in time."""
