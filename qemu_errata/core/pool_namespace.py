"""The XML namespace of the pool metadata a libvirt domain carries: defined here only.

Its last component is the metadata format's version; a reader meets other
versions too and must not take them for "no pool metadata".
"""

POOL_NAMESPACE_PREFIX = "urn:qemu-errata:pool:"
POOL_METADATA_VERSION = 1
POOL_NAMESPACE = f"{POOL_NAMESPACE_PREFIX}{POOL_METADATA_VERSION}"
