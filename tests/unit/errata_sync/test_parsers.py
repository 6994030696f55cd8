"""The pure readers of scripts/errata-sync, on small texts written in the kernel's shapes."""

from __future__ import annotations

from qemu_errata.errata_sync import csource, debian
from qemu_errata.errata_sync.kernel_facts import (
    RULE_ANY_IN_RANGE,
    RULE_EACH_LISTED,
    RULE_OWN_CPU,
    _target_list_rule,
    midr_range,
    own_midr_errata,
)

CPUTYPE = """
#define ARM_CPU_IMP_ARM\t\t0x41
#define ARM_CPU_IMP_FUJITSU\t0x46
#define ARM_CPU_PART_CORTEX_A53\t0xD03
#define FUJITSU_CPU_PART_A64FX\t0x001
#define MIDR_CORTEX_A53 MIDR_CPU_MODEL(ARM_CPU_IMP_ARM, ARM_CPU_PART_CORTEX_A53)
#define MIDR_FUJITSU_A64FX MIDR_CPU_MODEL(ARM_CPU_IMP_FUJITSU, FUJITSU_CPU_PART_A64FX)
#define MIDR_FUJITSU_ERRATUM_010001\t\tMIDR_FUJITSU_A64FX
#define MIDR_FUJITSU_ERRATUM_010001_MASK\t(~MIDR_CPU_VAR_REV(1, 0))
"""


def test_a_guard_is_every_enclosing_condition_and_an_or_of_defined_is_one_level() -> None:
    text = (
        "#ifdef CONFIG_A\n#if\tdefined(CONFIG_B) || \\\n\tdefined(CONFIG_C)\nx\n#endif\n"
        "#else\ny\n#endif\nz\n"
    )
    guards = {t.text: t.guard for t in csource.tokens(text)}
    assert guards["x"] == (frozenset({"A"}), frozenset({"B", "C"}))
    assert csource.guard_holds(guards["x"], frozenset({"A", "C"}))
    assert not csource.guard_holds(guards["x"], frozenset({"B"}))
    assert not csource.guard_holds(guards["y"], frozenset({"A", "B"}))  # #else never holds
    assert guards["z"] == ()


def test_midr_ranges_in_the_kernels_spellings() -> None:
    models = csource.cpu_models(CPUTYPE)
    toks = csource.tokens("f(MIDR_REV_RANGE(MIDR_CORTEX_A53, 0, 0, 4), MIDR_ALL_VERSIONS(X))")
    nodes, _ = csource.parse_nodes(toks, 2, ")")
    found = midr_range(nodes[0], models)
    assert found is not None
    assert (found.implementer, found.part, found.rv_min, found.rv_max) == (0x41, 0xD03, 0, 4)
    fixed = csource.parse_nodes(csource.tokens("(MIDR_CPU_VAR_REV(1, 1), BIT(25))"), 1, ")")[0]
    assert [csource.integer(n) for n in fixed] == [1 << 20 | 1, 1 << 25]


def test_a_midr_compared_under_a_mask_is_every_revision_the_mask_ignores() -> None:
    (ranges,) = own_midr_errata(CPUTYPE).values()
    assert [(r.part, r.rv_min, r.rv_max) for r in ranges] == [(1, 0, 0), (1, 1 << 20, 1 << 20)]


def test_the_target_list_rule_is_read_from_is_affected_midr_range() -> None:
    before = (
        "static u64 target_impl_cpu_num;\n"
        "__is_affected_midr_range(const struct arm64_cpu_capabilities *entry, u32 midr, u32 r)\n"
        "{\n\tif (!is_midr_in_range(&entry->midr_range))\n\t\treturn false;\n}\n"
    )
    after = before.replace("is_midr_in_range(&entry->midr_range)", "__is_midr_in_range(midr, x)")
    assert _target_list_rule(before) == RULE_ANY_IN_RANGE
    assert _target_list_rule(after) == RULE_EACH_LISTED
    assert _target_list_rule("bool is_affected_midr_range(void) {}") == RULE_OWN_CPU


def test_the_changelog_lists_subjects_under_the_stable_release_that_brought_them() -> None:
    changelog = """linux (7.2.10-1) unstable; urgency=medium

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v7.x/ChangeLog-7.2.10
    - [arm64] errata: Factor out broken AMU const counter cap
    - [arm64] a subject that goes on
      over two lines

 -- Someone <someone@example.org>  Mon, 02 Nov 2026 10:00:00 +0100

linux (7.2.9-1) unstable; urgency=medium
"""
    subjects = debian.stable_subjects(changelog)
    assert subjects["7.2.10"] == [
        "[arm64] errata: Factor out broken AMU const counter cap",
        "[arm64] a subject that goes on over two lines",
    ]
    assert debian.shipped_releases(changelog, "7.2") == ("7.2.9", "7.2.10")


def test_silicon_errata_rows_merge_by_erratum_and_name_arm_errata_of_other_cores() -> None:
    rst = """
+----------------+-----------------+-----------------+-----------------------------+
| Implementor    | Component       | Erratum ID      | Kconfig                     |
+================+=================+=================+=============================+
| ARM            | Cortex-A76      | #1188873,       | ARM64_ERRATUM_1418040       |
|                |                 | #1418040        |                             |
+----------------+-----------------+-----------------+-----------------------------+
| ARM            | Neoverse-N1     | #1418040        | ARM64_ERRATUM_1418040       |
+----------------+-----------------+-----------------+-----------------------------+
| Qualcomm Tech. | Kryo4xx Gold    | N/A             | ARM64_ERRATUM_1418040       |
+----------------+-----------------+-----------------+-----------------------------+
| Fujitsu        | A64FX           | E#010001        | FUJITSU_ERRATUM_010001      |
+----------------+-----------------+-----------------+-----------------------------+
| ARM            | MMU-500         | #562869         | N/A                         |
+----------------+-----------------+-----------------+-----------------------------+
"""
    rows = {(e.id, e.components, e.kconfig) for e in debian.documented_errata(rst)}
    assert rows == {
        ("ARM erratum 1188873", ("Cortex-A76",), "ARM64_ERRATUM_1418040"),
        (
            "ARM erratum 1418040",
            ("Cortex-A76", "Neoverse-N1", "Kryo4xx Gold"),
            "ARM64_ERRATUM_1418040",
        ),
        ("Fujitsu erratum 010001", ("A64FX",), "FUJITSU_ERRATUM_010001"),
        ("ARM erratum 562869", ("MMU-500",), ""),
    }


def test_a_config_names_what_it_builds_in_and_what_it_has() -> None:
    config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n"
    assert debian.enabled_symbols(config) == {"A"}
    assert debian.mentioned_symbols(config) == {"A", "B", "C"}
