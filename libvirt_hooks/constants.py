"""What the hook's modules share: imports only the namespace, so that any of them may use it."""

from qemu_errata.core.pool_namespace import POOL_NAMESPACE

# The (op, sub-op) pairs the hook guards, and what each is called in a refusal.
GUARDED = {
    ("migrate", "begin"): "incoming migration",
    ("restore", "begin"): "restore",
    ("prepare", "begin"): "start",
}
POOL_NAMESPACE_BYTES = POOL_NAMESPACE.encode()
MAX_XML_BYTES = 16 << 20
