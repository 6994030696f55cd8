"""Exception classes: every error the tool reports to a person is one of these."""


class QemuErrataError(Exception):
    """Base class of the errors this package raises on purpose."""


class InputError(QemuErrataError):
    """Bad input (a file, an argument, a catalogue entry): CLI exit status 2.

    The message is one line that names the input and what is wrong with it.
    """


class CatalogueError(InputError):
    """The register catalogue data file is inconsistent."""


class ProfileError(InputError):
    """A host profile or pool model file is malformed."""


class ProbeError(InputError):
    """A host probe cannot read its host (no /dev/kvm, QEMU died or hung): CLI exit 2.

    The message names what was probed (/dev/kvm, a QEMU CPU model, a sysfs
    tree) and what went wrong, in one line; no profile is written.
    """
