"""The nested hosts' kernel Images judge which workarounds the errata table says a kernel carries.

A guest logs "CPU features: detected: <description>" with the description
compiled into its Image: a workaround whose description is not in the Image
is one that kernel cannot enable, and one whose description is there is one
it carries. For Debian's 6.12, 7.2 and 7.3 Images (the nested hosts' kernels,
also guest-view's guests), every table row a guest of that release can log,
and every mitigation, must be in the Image, and no row the arm64 build leaves
out (``left_out_by``). No boot: the Images are read (built first when not cached).
"""

from __future__ import annotations

import pytest

from qemu_errata.core.errata import load_errata_table, release_of
from qemu_errata.nested.image import KERNELS, load_image


@pytest.mark.parametrize("series", sorted(KERNELS))
def test_a_kernel_image_holds_the_log_lines_of_the_workarounds_the_table_says_it_carries(
    series: str,
) -> None:
    image = load_image(KERNELS[series])
    compiled = image.kernel.read_bytes()
    table = load_errata_table(release_of(image.kernel_release))

    def holds(*logs: str) -> bool:
        return any(b"\0" + log.encode() + b"\0" in compiled for log in logs if log)

    wrong = []
    for erratum in table.errata:
        if not erratum.log or not erratum.guest_detects:
            continue
        # A log line shared with a row the build has (the repeat-TLBI line) is in the Image.
        shared = any(o.log == erratum.log and not o.left_out_by for o in table.errata)
        said = "arm64" not in erratum.left_out_by or shared
        if holds(erratum.log, *erratum.older_logs) != said:
            wrong.append(f"{erratum.id}: table says {said}")
    for mitigation in table.mitigations:
        if not holds(mitigation.log, *mitigation.older_logs):
            wrong.append(f"{mitigation.id}: table says it is there")
    assert wrong == [], f"Linux {image.kernel_release}"
