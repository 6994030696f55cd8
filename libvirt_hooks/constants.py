"""What the hook's modules share: imports only the namespace, so that any of them may use it."""

from qemu_errata.core.pool_namespace import POOL_NAMESPACE_PREFIX

# The (op, sub-op) pairs the hook guards, and what each is called in a refusal.
GUARDED = {
    ("migrate", "begin"): "incoming migration",
    ("restore", "begin"): "restore",
    ("prepare", "begin"): "start",
}
# Any version's namespace starts so: a document without these bytes (and without
# what could spell them otherwise, see libvirt_hooks.qemu) carries no pool metadata.
POOL_NAMESPACE_PREFIX_BYTES = POOL_NAMESPACE_PREFIX.encode()
MAX_XML_BYTES = 16 << 20
