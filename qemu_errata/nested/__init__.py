"""A real arm64 KVM host on an x86 machine: Debian's arm64 kernel under QEMU TCG.

``qemu-errata nested --cpu MODEL [--kernel 6.12|7.2|7.3] -- ARGS`` boots
``qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu MODEL``
with Debian's arm64 kernel (started at EL2, so KVM runs inside and
``/dev/kvm`` exists), runs ``qemu-errata ARGS`` there and exits with its
status. It is how this project checks its rules against a real kernel, and
how orchestration tests on an x86 CI machine get arm64 KVM hosts of
different CPU models and kernels (``qemu-errata kvm-validate`` run there
lets the kernel judge a pool model). A boot and a probe take about 5 s.

- Kernels: ``6.12``, Debian 12's ``linux-image-6.12.*-arm64-unsigned``
  (bookworm-security), and ``7.2``, Debian unstable's
  ``linux-binary-unsigned-7.2.*-arm64``, whose KVM also lets userspace set
  MIDR/REVIDR/AIDR (``KVM_CAP_ARM_WRITABLE_IMP_ID_REGS``) and has wider
  writable masks. Both are raw Images with ``CONFIG_KVM=y``.
- Userland: busybox and Debian 12's Python 3.11 (standard library only), so
  only commands whose code paths need nothing beyond the standard library
  (probe, baseline, check, ...) can run inside; the qemu-errata packages in
  use on the outer machine are copied in on every run.
- Files: arguments naming existing files or directories are carried in,
  ``-o``/``--output`` files are carried back out (:mod:`.carry`). For
  ``guest-view``, which boots a guest kernel, the host's own Image is
  carried to ``/boot/vmlinuz-RELEASE``, its default kernel.
- Output: the command's stdout and stderr are passed through; one more line
  on stderr names the CPU model, the kernel release and every package
  version of the image. The nested host's name, which probes put in
  profiles, is ``MODEL-linux-SERIES`` (``neoverse-n1-linux-6.12``).
- Exit status: the command's own; 2 for a CPU model QEMU does not have or
  that has no AArch64; 125 when the nested host itself failed
  (QEMU did not start, the kernel panicked, no result within ``--timeout``,
  default 300 s), with the end of the kernel's console on stderr. QEMU is
  always stopped before the command returns.
- Image cache: built at first use (about 100 MB of packages to download,
  then about 5 s of work), under ``$QEMU_ERRATA_NESTED_CACHE``, default
  ``/var/cache/qemu-errata/nested``; keyed on the resolved package versions
  and recorded in ``images/<kernel>/current/manifest.json``; an image made
  by another version of this code (its /init, its package list) is rebuilt
  by itself. Without ``--rebuild`` no network is needed once an image
  exists. Packages come through a private apt setup (:mod:`.apt`) from the
  mirrors the system's apt already uses: the system's sources and
  architectures are not changed.
  ``qemu-errata nested --rebuild [--kernel K]`` resolves the newest versions
  (Debian replaces security and unstable versions) and rebuilds.

- QEMU: ``qemu-check`` (or ``--with-qemu``) appends a layer with Debian's
  arm64 QEMU at a pinned version and the libraries it loads
  (:mod:`.qemu_layer`), cached apart from the kernel images, and gives the
  host 2 GiB for the VM it starts.

Modules: :mod:`.apt` fetches packages, :mod:`.image` builds and caches the
boot files, :mod:`.qemu_layer` the QEMU layer (:mod:`.elf` finds its
libraries), :mod:`qemu_errata.cpio` writes initramfs archives, :mod:`.carry` plans the
file transfer, :mod:`.boot` runs QEMU, :mod:`.guest` runs inside,
:mod:`.command` is the CLI. This ``__init__`` imports nothing, so that
:mod:`.guest` starts fast inside.
"""
