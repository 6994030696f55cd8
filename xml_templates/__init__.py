"""XML fragments for libvirt domain XML, read with lxml."""
