"""guest-view's guest userspace: an initramfs of busybox whose /init prints the guest's words.

The guest kernel unpacks it (``linux,initrd-start``/``-end`` in /chosen) and runs
its /init, a busybox shell script that mounts sysfs and devtmpfs, writes each file
of /sys/devices/system/cpu/vulnerabilities to /dev/kmsg as
``qemu-errata: vulnerabilities: <file>: <words>`` (so the lines reach the early
console with the rest of the kernel's log; ``printk.devkmsg=on`` keeps the kernel
from rate-limiting them), logs the end line and powers off (PSCI SYSTEM_OFF).
core.guest_log reads the lines back.

The busybox must be a static arm64 one: Debian's ``busybox-static`` package puts it
at /bin/busybox (the nested hosts carry the version pinned in
``data/guest-userspace.toml``). Standard library only: it runs on the nested host.
"""

from __future__ import annotations

import io

from qemu_errata.core.guest_log import VULNERABILITIES_END, VULNERABILITIES_PREFIX
from qemu_errata.cpio import CpioWriter

DEFAULT_BUSYBOX = "/bin/busybox"
# What the guest's kernel command line gets besides the console: /dev/kmsg writes unlimited.
COMMAND_LINE = "printk.devkmsg=on"
DIRECTORY = "/sys/devices/system/cpu/vulnerabilities"
INIT_SCRIPT = f"""\
#!/bin/sh
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
cd {DIRECTORY}
for name in *; do
  echo "{VULNERABILITIES_PREFIX}$name: $(/bin/busybox cat "$name")" > /dev/kmsg
done
echo "{VULNERABILITIES_END}" > /dev/kmsg
/bin/busybox poweroff -f
"""
_ELF_AARCH64 = (b"\x7fELF\x02\x01", 0xB7)  # ELF64 little-endian, e_machine EM_AARCH64


def is_arm64_executable(data: bytes) -> bool:
    """Whether ``data`` starts as a 64-bit little-endian arm64 ELF file."""
    magic, machine = _ELF_AARCH64
    return data.startswith(magic) and int.from_bytes(data[18:20], "little") == machine


def userspace_initramfs(busybox: bytes) -> bytes:
    """The newc archive of the guest's userspace: /init, busybox, the mount points."""
    stream = io.BytesIO()
    archive = CpioWriter(stream)
    for directory in ("bin", "dev", "proc", "sys"):
        archive.directory(directory)
    archive.file("bin/busybox", busybox, mode=0o755)
    archive.symlink("bin/sh", "busybox")
    archive.character_device("dev/console", 5, 1)
    archive.file("init", INIT_SCRIPT.encode(), mode=0o755)
    archive.close()
    return stream.getvalue()
