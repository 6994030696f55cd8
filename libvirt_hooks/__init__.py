"""The libvirt hook entry point of qemu-errata."""
