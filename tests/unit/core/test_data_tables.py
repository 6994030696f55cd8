"""Every data file of the package is held to its shape by the one strict table reader: an
unknown key, a wrong type, a value wider than its field (MIDR_EL1.PartNum is 12 bits, a
register encoding's parts 4), a range backwards and a second row for one name are each one
line naming the file, the row and the key. The cases edit the shipped files."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import pytest

from qemu_errata.core.catalogue import load_catalogue, parse_catalogue
from qemu_errata.core.errata.schema import parse_facts, parse_words
from qemu_errata.core.kernel_changes import parse_kernel_changes
from qemu_errata.core.midr import parse_cpu_names
from qemu_errata.core.vmms import parse_vmm_table
from qemu_errata.errata_sync.sources import parse_pins
from qemu_errata.errors import CatalogueError

PARSERS: dict[str, Callable[[str, str], object]] = {
    "errata.toml": parse_facts,
    "errata-effects.toml": parse_words,
    "vmms.toml": parse_vmm_table,
    "kernel-changes.toml": lambda text, origin: parse_kernel_changes(
        text, origin, load_catalogue()
    ),
    "debian-kernels.toml": parse_pins,
    "registers.toml": parse_catalogue,
    "cpus.json": parse_cpu_names,
}

_A57_RANGE = 'kconfig = ["ARM64_ERRATUM_832075"]'
_AC03 = "{ implementer = 0xc0, part = 0xac3 },\n  { implementer = 0xc0, part = 0xac4 },\n]"
_2064142 = 'part = 0xd46, from = "r0p0", to = "r0p2" },\n]\nkernels = ["6.12", "7.2", "7.3"]'
_S1PIE = 'field = "S1PIE"\nsince = "7.3"\nbecomes = 0'

# (file, text in it, its replacement, the whole message)
CASES = [
    (
        "errata.toml",
        _A57_RANGE,
        'kconfg = ["ARM64_ERRATUM_832075"]',
        "errata.toml: workaround[2] ARM64_WORKAROUND_DEVICE_LOAD_ACQUIRE, key 'kconfg': not a "
        "key of this table (known: affects, capability, kconfig, kernels, left_out_by, log, "
        "matcher, older)",
    ),
    (
        "errata.toml",
        _A57_RANGE,
        'kconfig = "ARM64_ERRATUM_832075"',
        "errata.toml: workaround[2] ARM64_WORKAROUND_DEVICE_LOAD_ACQUIRE, key 'kconfig': not a "
        "list",
    ),
    (
        "errata.toml",
        _AC03,
        _AC03.replace("0xac3", "0x1ac3"),
        "errata.toml: erratum[0] Ampere erratum AC03_CPU_38, affects[0], key 'part': 0x1ac3 "
        "does not fit in MIDR_EL1.PartNum (12 bits)",
    ),
    (
        "errata.toml",
        _2064142,
        _2064142.replace('from = "r0p0"', 'from = "r1p0"'),
        "errata.toml: erratum[3] ARM erratum 2064142, affects[0], key 'from': 'r1p0' is after "
        "'to' 'r0p2'",
    ),
    (
        "errata.toml",
        _2064142,
        _2064142.replace('to = "r0p2"', 'to = "r16p2"'),
        "errata.toml: erratum[3] ARM erratum 2064142, affects[0], key 'to': 'r16p2' is not a "
        "revision rNpM with N in 0..15, M in 0..15",
    ),
    (
        "errata.toml",
        'id = "Ampere erratum AC04_CPU_10"',
        'id = "Ampere erratum AC03_CPU_38"',
        "errata.toml: erratum[1] Ampere erratum AC03_CPU_38, key 'id': 'Ampere erratum "
        "AC03_CPU_38' again (first in errata.toml: erratum[0] Ampere erratum AC03_CPU_38)",
    ),
    (
        "errata-effects.toml",
        'applies = "hypervisor"',
        'applies = "kvm"',
        "errata-effects.toml: workaround[4] ARM64_WORKAROUND_834220, key 'applies': 'kvm' is "
        "not one of guest, hypervisor, host",
    ),
    (
        "errata-effects.toml",
        'field = "EL0", min = 2',
        'field = "EL0", min = "2"',
        "errata-effects.toml: workaround[5] ARM64_WORKAROUND_1742098, matters_only_if, key "
        "'min': '2' is not an integer",
    ),
    (
        "errata-effects.toml",
        'applies = "hypervisor"',
        'applies = "hypervisor"\nlog = "ARM erratum 834220"',
        "errata-effects.toml: workaround[4] ARM64_WORKAROUND_834220, key 'log': not a key of "
        "this table (known: applies, capability, effect, matters_only_if, requires)",
    ),
    (
        "errata-effects.toml",
        'id = "Spectre-v3a"',
        'id = "Spectre-v2"',
        "errata-effects.toml: mitigation[1] Spectre-v2, key 'id': 'Spectre-v2' again (first in "
        "errata-effects.toml: mitigation[0] Spectre-v2)",
    ),
    (
        "vmms.toml",
        "sets_midr = false",
        'sets_midr = "false"',
        "vmms.toml: vmm[0] qemu-7.2, key 'sets_midr': 'false' is not true or false",
    ),
    (
        "vmms.toml",
        "impl_cpu = false",
        "impl_cpu = false\nimpl_cpus = false",
        "vmms.toml: vmm[0] qemu-7.2, key 'impl_cpus': not a key of this table (known: evidence, "
        "firmware_properties, impl_cpu, name, qemu_version, sets_midr, sysreg_series, title, "
        "tolerates_missing_registers, writable_imp_id_regs)",
    ),
    (
        "vmms.toml",
        'qemu_version = "7.2"',
        'qemu_version = "7"',
        "vmms.toml: vmm[0] qemu-7.2, key 'qemu_version': '7' is not N.N or \"\"",
    ),
    (
        "vmms.toml",
        'sysreg_series = ""',
        'sysreg_series = "v4"',
        "vmms.toml: vmm[0] qemu-7.2, key 'sysreg_series': 'v4' is not one of \"\", v3, v10",
    ),
    (
        "vmms.toml",
        'name = "qemu-11.1"',
        'name = "qemu-7.2"',
        "vmms.toml: vmm[1] qemu-7.2, key 'name': 'qemu-7.2' again (first in vmms.toml: vmm[0] "
        "qemu-7.2)",
    ),
    (
        "kernel-changes.toml",
        'since = "7.3"\nneeds',
        'since = "7.3"\nneed',
        "kernel-changes.toml: listed_register[0] PMMIR_EL1, key 'needs': missing",
    ),
    (
        "kernel-changes.toml",
        'since = "7.3"\nneeds',
        "since = 7.3\nneeds",
        "kernel-changes.toml: listed_register[0] PMMIR_EL1, key 'since': 7.3 is not a string",
    ),
    (
        "kernel-changes.toml",
        _S1PIE,
        _S1PIE.replace("becomes = 0", "becomes = 16"),
        "kernel-changes.toml: first_run_rewrite[0] S1PIE, key 'becomes': 0x10 does not fit in "
        "ID_AA64MMFR3_EL1.S1PIE (4 bits)",
    ),
    (
        "kernel-changes.toml",
        'needs = "ID_AA64DFR0_EL1.PMUVer"',
        'needs = "ID_AA64DFR0_EL1.PMUVersion"',
        "kernel-changes.toml: listed_register[0] PMMIR_EL1, key 'needs': "
        "ID_AA64DFR0_EL1.PMUVersion is not a catalogued field",
    ),
    (
        "kernel-changes.toml",
        '[[first_run_rewrite]]\nregister = "ID_AA64MMFR3_EL1"',
        '[[listed_register]]\nregister = "PMMIR_EL1"\nsince = "7.3"\nneeds = ""\nevidence = ""\n\n'
        '[[first_run_rewrite]]\nregister = "ID_AA64MMFR3_EL1"',
        "kernel-changes.toml: listed_register[1] PMMIR_EL1, key 'register': 'PMMIR_EL1' again "
        "(first in kernel-changes.toml: listed_register[0] PMMIR_EL1)",
    ),
    (
        "debian-kernels.toml",
        'suite = "sid"',
        'suite = "sid"\nsuit = "sid"',
        "debian-kernels.toml: kernel[1] 7.2, key 'suit': not a key of this table (known: config, "
        "oldest, series, source, suite, version)",
    ),
    (
        "debian-kernels.toml",
        "size = 1773888",
        'size = "1773888"',
        "debian-kernels.toml: kernel[0] 6.12, config, key 'size': '1773888' is not an integer",
    ),
    (
        "debian-kernels.toml",
        'sha256 = "4020f2c4',
        'sha256 = "4020f2c',
        "debian-kernels.toml: kernel[0] 6.12, config, key 'sha256': "
        "'4020f2cd3bd613a29f8b5bef0c02a13f868a0c0c26cf19c36fe577c05e1f575' is not a sha256 in hex",
    ),
    (
        "debian-kernels.toml",
        'series = "7.2"\nsuite',
        'series = "6.12"\nsuite',
        "debian-kernels.toml: kernel[1] 6.12, key 'series': '6.12' again (first in "
        "debian-kernels.toml: kernel[0] 6.12)",
    ),
    (
        "registers.toml",
        'name = "Variant"\n  bits = [23, 20]',
        'name = "Variant"\n  bits = [23, 20]\n  signd = true',
        "registers.toml: register[0] MIDR_EL1, field[1] Variant, key 'signd': not a key of this "
        "table (known: arm_name, bits, name, refused, refused_after_linux, refused_because, rule, "
        "safe, signed, values)",
    ),
    (
        "registers.toml",
        'name = "Variant"\n  bits = [23, 20]',
        'name = "Variant"\n  bits = [20, 23]',
        "registers.toml: register[0] MIDR_EL1, field[1] Variant, key 'bits': msb below lsb",
    ),
    (
        "registers.toml",
        "encoding = [3, 0, 0, 0, 6]",
        "encoding = [3, 0, 0, 0, 16]",
        "registers.toml: register[1] REVIDR_EL1, key 'encoding[4]': 16 does not fit in 4 bits",
    ),
    (
        "registers.toml",
        'name = "REVIDR_EL1"',
        'name = "MIDR_EL1"',
        "registers.toml: register[1] MIDR_EL1, key 'name': 'MIDR_EL1' again (first in "
        "registers.toml: register[0] MIDR_EL1)",
    ),
    (
        "cpus.json",
        '"0xd03": "Cortex-A53"',
        '"0x1d03": "Cortex-A53"',
        "cpus.json: implementers.0x41, key 'parts': '0x1d03' is not a hex number of 12 bits",
    ),
    (
        "cpus.json",
        '"name": "Arm"',
        '"name": 1',
        "cpus.json: implementers.0x41, key 'name': 1 is not a string",
    ),
]


def _shipped(name: str) -> str:
    return resources.files("qemu_errata").joinpath("data", name).read_text("utf-8")


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_the_shipped_file_passes(name: str) -> None:
    PARSERS[name](_shipped(name), name)


@pytest.mark.parametrize(("name", "old", "new", "message"), CASES)
def test_a_malformed_row_is_one_line_naming_file_row_and_key(
    name: str, old: str, new: str, message: str
) -> None:
    text = _shipped(name)
    assert old in text
    with pytest.raises(CatalogueError) as refused:
        PARSERS[name](text.replace(old, new, 1), name)
    assert str(refused.value) == message


def test_every_file_kind_is_covered() -> None:
    assert {case[0] for case in CASES} == set(PARSERS)
