"""The vocabulary of the pool metadata a libvirt domain carries: defined here only.

The writer (``qemu_errata.vmm.pool_element``, lxml) and the hook's reader
(``libvirt_hooks.domain``, expat, which must stay light) spell every element,
attribute, register group and the version from here, so the two cannot drift
(a property test round-trips models through both). Standard library only: the
hook imports it on every decision.

The namespace's last component is the metadata format's version; a reader meets
other versions too and must not take them for "no pool metadata".
"""

POOL_NAMESPACE_PREFIX = "urn:qemu-errata:pool:"
POOL_METADATA_VERSION = 1
VERSION = str(POOL_METADATA_VERSION)  # as the pool element's version attribute spells it
POOL_NAMESPACE = f"{POOL_NAMESPACE_PREFIX}{POOL_METADATA_VERSION}"
PREFIX = "qemu-errata"  # the namespace prefix the writer uses (a reader accepts any)

# Elements, each in POOL_NAMESPACE: <pool version> holds <targets> of <implementation midr
# [revidr] [aidr]>, at most one <timer frequency>, <registers group> of <register name value>,
# an <accepted name> for each lost mitigation the model accepts by name (the pool model's
# accepted_lost_mitigations) and, while applied, the domain's own <user-cpu>.
POOL = "pool"
TARGETS = "targets"
IMPLEMENTATION = "implementation"
TIMER = "timer"
REGISTERS = "registers"
REGISTER = "register"
ACCEPTED = "accepted"
USER_CPU = "user-cpu"

# Attributes (in no namespace), and the base their numbers are written in.
VERSION_ATTRIBUTE = "version"
MIDR = "midr"
REVIDR = "revidr"
AIDR = "aidr"
FREQUENCY = "frequency"
GROUP = "group"
NAME = "name"
VALUE = "value"
HEX = 16  # midr, revidr, aidr and value: "0x..."
DECIMAL = 10  # frequency, in Hz

# The register maps a profile and a model carry, in the order they are reported; a
# <registers group> names one of them.
REGISTER_GROUPS = ("id_registers", "firmware_registers", "gic_registers")
