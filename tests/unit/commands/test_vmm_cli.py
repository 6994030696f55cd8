"""The installed ``qemu-errata render`` and the usage errors of render/apply/verify."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from lxml import etree
from support.cli import run_cli
from support.domains import DOMAIN
from support.vmm_pool import TCG_GOLDEN, hand_written_model, three_host_pool

from qemu_errata.files import write_json
from qemu_errata.vmm.domain_xml import ARG_TAG, COMMANDLINE_TAG
from qemu_errata.vmm.pool_element import find_pool_element


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.json"
    write_json(path, three_host_pool().to_json())
    return path


def test_render_args_print_shell_words_and_notes_on_stderr(model_file: Path) -> None:
    result = run_cli("render", model_file, "--vmm", "qemu-tcg", "--qemu-cpu", "neoverse-n1")
    assert result.returncode == 0
    assert shlex.split(result.stdout) == TCG_GOLDEN
    assert result.stderr.startswith("qemu-errata: note: a TCG guest gets no target implementation")


def test_render_json_carries_arguments_and_notes(tmp_path: Path) -> None:
    path = tmp_path / "hand.json"
    write_json(path, hand_written_model(0x414FD0C1, 0x413FD0B1).to_json())
    result = run_cli("render", path, "--vmm", "qemu-kvm", "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["arguments"][:3] == ["-cpu", "host", "-global"]
    machine = "impl-cpu.0.midr=0x413fd0b1,impl-cpu.1.midr=0x414fd0c1"
    assert data["arguments"][-2:] == ["-machine", machine]
    assert any("REVIDR of Arm Neoverse-N1" in note for note in data["notes"])
    assert result.stderr == ""


def test_render_domain_xml_takes_the_dialect_from_the_domain_type(
    model_file: Path, tmp_path: Path
) -> None:
    domain_file = tmp_path / "domain.xml"
    domain_file.write_bytes(DOMAIN)
    result = run_cli("render", model_file, "--as", "domain-xml", "--domain", domain_file)
    assert result.returncode == 0, result.stderr
    domain = etree.fromstring(result.stdout.encode())
    values = [arg.get("value") for arg in domain.iterfind(f"{COMMANDLINE_TAG}/{ARG_TAG}")]
    machine = values.index("-machine")
    assert values[machine : machine + 2] == [
        "-machine",
        "impl-cpu.0.midr=0x411fd070,impl-cpu.0.revidr=0x0,"
        "impl-cpu.0.aidr=0x0,impl-cpu.1.midr=0x414fd0b1,impl-cpu.1.revidr=0x1,"
        "impl-cpu.1.aidr=0x0,impl-cpu.2.midr=0x414fd0c1,impl-cpu.2.revidr=0x0,"
        "impl-cpu.2.aidr=0x0",
    ]
    # The model file carries its lost fields: each is set on the host CPU model.
    assert any((v or "").startswith("host-arm-cpu.SYSREG_ID_AA64") for v in values)
    assert find_pool_element(domain) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["render", "{model}", "--vmm", "qemu-tcg"],
            "qemu-errata: qemu-tcg needs a named CPU model (--qemu-cpu MODEL)\n",
        ),
        (["render", "{model}"], "qemu-errata: render: --vmm is required without --domain\n"),
        (
            ["render", "{model}", "--vmm", "qemu-kvm", "--as", "args", "--domain", "d.xml"],
            "qemu-errata: --domain d.xml: only with --as domain-xml\n",
        ),
        (
            ["render", "{model}", "--as", "domain-xml", "--domain", "/nonexistent.xml"],
            "qemu-errata: /nonexistent.xml: cannot read: No such file or directory\n",
        ),
        (
            ["verify", "{model}"],
            "qemu-errata: verify: give either --qmp SOCKET or both --connect URI and --domain NAME"
            "\n",
        ),
        (
            ["verify", "{model}", "--qmp", "s", "--domain", "vm"],
            "qemu-errata: verify: give either --qmp SOCKET or both --connect URI and --domain NAME"
            "\n",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(model_file: Path, args: list[str], message: str) -> None:
    result = run_cli(*[a.format(model=model_file) for a in args])
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)
