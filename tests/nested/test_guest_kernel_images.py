"""The nested hosts' kernel Images judge which workarounds the errata table says a kernel carries.

A guest logs "CPU features: detected: <description>" with the description
compiled into its Image: a workaround whose description is not in the Image
is one that kernel cannot enable, and one whose description is there is one
it carries. For Debian's 6.12 and 7.2 Images (the nested hosts' kernels, also
guest-view's guests), every table row a guest can log, and every mitigation,
must be in the Image exactly when the table says that version carries it:
from its ``since`` on, unknown for a series it was back-ported to
(``stable``: some point releases), and never when Debian builds without it
(``left_out_by``). No boot: the Images are read (built first when not cached).
"""

from __future__ import annotations

import pytest

from qemu_errata.core.catalogue import parse_kernel_version
from qemu_errata.core.errata import carries, load_errata_table
from qemu_errata.nested.image import KERNELS, load_image


@pytest.mark.parametrize("series", sorted(KERNELS))
def test_a_kernel_image_holds_the_log_lines_of_the_workarounds_the_table_says_it_carries(
    series: str,
) -> None:
    image = load_image(KERNELS[series])
    version = parse_kernel_version(image.kernel_release)
    assert version is not None
    compiled = image.kernel.read_bytes()
    table = load_errata_table()

    def holds(*logs: str) -> bool:
        return any(b"\0" + log.encode() + b"\0" in compiled for log in logs if log)

    wrong = []
    for erratum in table.errata:
        if not erratum.log or not erratum.guest_detects or version in erratum.stable:
            continue
        said = carries(erratum.since, version) and "Debian" not in erratum.left_out_by
        if holds(erratum.log, *erratum.older_logs) != said:
            wrong.append(f"{erratum.id} (since {erratum.since}): table says {said}")
    for mitigation in table.mitigations:
        said = carries(mitigation.since, version)
        if holds(mitigation.log, *mitigation.older_logs) != said:
            wrong.append(f"{mitigation.id} (since {mitigation.since}): table says {said}")
    assert wrong == [], f"Linux {image.kernel_release}"
