"""A nested run says how far it is: narration with --verbose, one kept-up line on a terminal.

The stages come from the nested host's console (QEMU's ``-serial file:``), where
the guest side marks when the command starts and ends; the kernel's own lines
(it boots with ``quiet``) are passed on with --verbose.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from support.cli import QEMU_ERRATA

from qemu_errata.nested.image import KERNELS, load_image


def test_verbose_narrates_the_boot_and_leaves_the_output_alone(tmp_path: Path) -> None:
    image = load_image(KERNELS["6.12"])
    done = subprocess.run(
        [QEMU_ERRATA, "nested", "--verbose", "--cpu", "neoverse-n1", "--", "show", "qemu-max"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    local = subprocess.run(
        [QEMU_ERRATA, "show", "qemu-max"], capture_output=True, text=True, check=True
    )
    assert done.stdout == local.stdout
    steps = [line.split(": ", 1)[1] for line in done.stderr.splitlines()]
    assert steps[0] == f"image: {image.describe()}"
    assert steps[1].startswith("QEMU: qemu-system-aarch64 -nodefaults ")
    assert steps[2] == "booting neoverse-n1-linux-6.12 (QEMU TCG)"
    stages = [step.split(" s: ", 1)[1] for step in steps if " s: " in step]
    assert stages == [
        "running qemu-errata show on neoverse-n1-linux-6.12",
        "qemu-errata show ended; neoverse-n1-linux-6.12 powers off",
    ]
    assert done.stderr.splitlines()[-1].startswith("qemu-errata nested: ran on a neoverse-n1")


def test_a_terminal_sees_the_boot_go_by(tmp_path: Path) -> None:
    """script(1) gives the run a terminal, as an operator's shell does."""
    typescript = tmp_path / "typescript"
    command = shlex.join([QEMU_ERRATA, "nested", "--cpu", "neoverse-n1", "--", "show", "qemu-max"])
    subprocess.run(
        ["script", "--quiet", "--return", "--command", f"{command} >/dev/null", typescript],
        capture_output=True,
        check=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "TERM": "xterm"},
    )
    shown = typescript.read_bytes().decode()  # read_text() would turn each \r into \n
    assert "\rqemu-errata nested: booting neoverse-n1-linux-6.12 (QEMU TCG)... " in shown
    assert "\rqemu-errata nested: running qemu-errata show on neoverse-n1-linux-6.12... " in shown
    assert "\r\033[K" in shown


def test_probe_verbose_on_a_real_kvm(tmp_path: Path) -> None:
    """The kvm probe of a Linux 6.12 nested host tells what its KVM gave."""
    done = subprocess.run(
        [QEMU_ERRATA, "nested", "--cpu", "neoverse-n1", "--", "probe", "--verbose"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    told = [line for line in done.stderr.splitlines() if line.startswith("qemu-errata probe: ")]
    assert told[0].startswith("qemu-errata probe: --backend kvm, ")
    assert told[0].endswith(" s, host name neoverse-n1-linux-6.12")
    assert told[1].startswith("qemu-errata probe: KVM of Linux 6.12.")
    assert any(line.startswith("qemu-errata probe: writable masks of ") for line in told)
    assert "qemu-errata probe:   CPU 0: Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)" in told
