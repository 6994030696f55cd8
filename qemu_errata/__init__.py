"""qemu-errata: safe live migration of arm64 KVM guests across different hosts.

The package is a pure core (catalogue, profiles, pool model, target list,
checks) that does no I/O, and a thin shell (probes, QMP, libvirt, the hook,
the CLI) around it. Core modules never import shell modules.
"""

__version__ = "0.4.0"
