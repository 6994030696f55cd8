"""Host probes: what a host's CPUs and KVM can present to a guest, as a host profile.

Three backends: ``kvm`` (the real kernel, pure standard library), ``qemu``
(a QEMU-emulated CPU, over QMP and the gdbstub) and ``sysfs`` (CPU
implementations only). The kvm and sysfs backends and everything they import
use only the Python standard library: they also run inside minimal arm64
guests. Nothing is imported here, so importing one backend never pulls in
another's dependencies.
"""
