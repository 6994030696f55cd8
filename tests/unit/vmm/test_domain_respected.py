"""The user's domain is respected: its features, its CPU model, and what we replace."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from support.cli import run_cli
from support.vmm_pool import three_host_pool

from qemu_errata.errors import InputError
from qemu_errata.files import write_json
from qemu_errata.vmm.libvirt_domain import apply_to_domain_xml


def domain(kind: str = "kvm", cpu: str = "") -> bytes:
    return (
        f"<domain type='{kind}'><name>vm</name>"
        f"<os><type arch='aarch64' machine='virt'>hvm</type></os>{cpu}<devices/></domain>"
    ).encode()


def apply(data: bytes, qemu_cpu: str | None = None) -> tuple[etree._Element, tuple[str, ...]]:
    text, config = apply_to_domain_xml(data, three_host_pool(), "vm.xml", None, qemu_cpu)
    return etree.fromstring(text.encode()), config.notes


def test_a_feature_consistent_with_the_model_is_kept() -> None:
    # The pool presents the A57's ID_AA64PFR0_EL1.SVE = NI: disabling SVE agrees.
    applied, _ = apply(
        domain(cpu="<cpu mode='host-passthrough'><feature policy='disable' name='sve'/></cpu>")
    )
    features = [(f.get("policy"), f.get("name")) for f in applied.iterfind("cpu/feature")]
    assert features == [("disable", "sve")]


def test_a_feature_contradicting_the_model_is_refused_by_name() -> None:
    data = domain(cpu="<cpu mode='host-passthrough'><feature policy='disable' name='pmu'/></cpu>")
    with pytest.raises(InputError) as refused:
        apply(data)
    assert str(refused.value) == (
        "vm.xml: <feature policy='disable' name='pmu'/> contradicts the model, "
        "which has ID_AA64DFR0_EL1.PMUVer = IMP (0x1)"
    )


def test_a_feature_we_cannot_judge_is_refused() -> None:
    data = domain(cpu="<cpu mode='host-passthrough'><feature policy='require' name='mte'/></cpu>")
    with pytest.raises(InputError, match="cannot tell which ID register fields it changes"):
        apply(data)


def test_qemu_tcg_takes_the_domain_model_and_refuses_an_unknown_one() -> None:
    applied, _ = apply(domain("qemu", "<cpu mode='custom'><model>cortex-a57</model></cpu>"))
    assert applied.findtext("cpu/model") == "cortex-a57"
    with pytest.raises(InputError, match="CPU model 'cortex-z9': unknown"):
        apply(domain("qemu", "<cpu mode='custom'><model>cortex-z9</model></cpu>"))


def test_replacing_the_domain_cpu_is_announced() -> None:
    _, notes = apply(domain(cpu="<cpu mode='custom'><model>cortex-a57</model></cpu>"))
    assert notes[-1] == (
        "the domain's CPU model cortex-a57 (mode custom) is replaced by mode host-passthrough"
    )
    _, notes = apply(
        domain("qemu", "<cpu mode='custom'><model>cortex-a57</model></cpu>"), "neoverse-n1"
    )
    assert notes[-1] == (
        "the domain's CPU model cortex-a57 (mode custom) is replaced by "
        "CPU model neoverse-n1 (mode custom)"
    )


def test_render_domain_implies_domain_xml_and_names_a_missing_type(tmp_path: Path) -> None:
    model, vm = tmp_path / "model.json", tmp_path / "vm.xml"
    write_json(model, three_host_pool().to_json())
    vm.write_bytes(domain())
    rendered = run_cli("render", model, "--domain", vm)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.startswith('<domain type="kvm">')
    vm.write_bytes(domain().replace(b" type='kvm'", b""))
    refused = run_cli("render", model, "--domain", vm)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"qemu-errata: {vm}: the domain has no type attribute; "
        f"qemu-kvm runs type 'kvm', qemu-tcg type 'qemu'\n"
    )
