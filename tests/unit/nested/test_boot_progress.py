"""What a person sees while a nested host boots: a kept-up line on a terminal, or narration."""

from __future__ import annotations

import io

from qemu_errata.nested.guest import ENDED_MARK, STARTED_MARK
from qemu_errata.nested.progress import BootProgress

HOST = "neoverse-n1-linux-6.12"


def _boot(progress: BootProgress) -> None:
    progress.image("Linux 6.12.1 (image abc: busybox 1)")
    progress.starting(["qemu-system-aarch64", "-cpu", "neoverse-n1,aarch64=on"])
    progress.tick(0.5, [])
    progress.tick(1.0, ["[    0.9] Run /init as init process"])
    progress.tick(3.5, [STARTED_MARK])
    progress.tick(4.9, [ENDED_MARK, "[    4.1] reboot: Power down"])
    progress.stopped()


def test_verbose_narrates_each_step_in_order() -> None:
    stream = io.StringIO()
    _boot(BootProgress(stream, HOST, "probe", verbose=True))
    assert stream.getvalue().splitlines() == [
        "qemu-errata nested: image: Linux 6.12.1 (image abc: busybox 1)",
        "qemu-errata nested: QEMU: qemu-system-aarch64 -cpu neoverse-n1,aarch64=on",
        "qemu-errata nested: booting neoverse-n1-linux-6.12 (QEMU TCG)",
        "qemu-errata nested: console: [    0.9] Run /init as init process",
        "qemu-errata nested: 3.5 s: running qemu-errata probe on neoverse-n1-linux-6.12",
        "qemu-errata nested: 4.9 s: qemu-errata probe ended; neoverse-n1-linux-6.12 powers off",
        "qemu-errata nested: console: [    4.1] reboot: Power down",
    ]


def test_a_terminal_gets_one_line_kept_up_to_date_then_erased() -> None:
    stream = io.StringIO()
    _boot(BootProgress(stream, HOST, "probe", verbose=False))
    shown = stream.getvalue().split("\r")
    assert shown == [
        "",
        "qemu-errata nested: booting neoverse-n1-linux-6.12 (QEMU TCG)... 0 s\033[K",
        "qemu-errata nested: booting neoverse-n1-linux-6.12 (QEMU TCG)... 1 s\033[K",
        "qemu-errata nested: running qemu-errata probe on neoverse-n1-linux-6.12... 4 s\033[K",
        "qemu-errata nested: qemu-errata probe ended; neoverse-n1-linux-6.12 powers off... 5 s"
        "\033[K",
        "\033[K",
    ]
