"""The fleet's parts that need no boot: the guest program's ELF, heartbeat lines, the agent,
the link reader, host specs and the nested-migrate report's schema."""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from support.newc import read_newc
from support.schemas import validate

from qemu_errata.errors import InputError
from qemu_errata.nested.agent import AGENT_FORMAT, Agent, serve
from qemu_errata.nested.fleet import HostSpec
from qemu_errata.nested.heartbeat import (
    PROGRAM,
    boot_facts,
    guest_initramfs,
    parse_beat,
    program_elf,
)
from qemu_errata.nested.migration import Report

BEAT = (
    "qemu-errata-heartbeat 000000000000001a MIDR_EL1=0x00000000414fd0c1 "
    "ID_AA64PFR0_EL1=0x0000000000110011 ID_AA64DFR0_EL1=0x0000000000000006"
)


def test_the_guest_program_is_a_static_arm64_executable_entered_at_its_code() -> None:
    code = PROGRAM.read_bytes()
    elf = program_elf(code)
    assert elf[:4] == b"\x7fELF"
    assert elf[4] == 2
    machine, _, entry = struct.unpack_from("<HIQ", elf, 18)
    assert machine == 183  # EM_AARCH64
    # One PT_LOAD segment at 0x400000 holding the headers and the code: entry is right after them.
    assert entry == 0x400000 + 64 + 56
    assert elf.endswith(code)


def test_the_guest_initramfs_has_its_console_kmsg_and_the_program_as_init() -> None:
    entries = {name: (mode, data) for name, mode, data in read_newc(guest_initramfs())}
    assert entries["init"][1][:4] == b"\x7fELF"
    assert entries["init"][0] & 0o111
    assert {"dev/console", "dev/kmsg"} <= entries.keys()


def test_a_heartbeat_line_gives_its_count_and_registers() -> None:
    beat = parse_beat("[   12.3] " + BEAT)
    assert beat is not None
    assert beat.count == 26
    assert beat.registers == {
        "MIDR_EL1": "0x414fd0c1",
        "ID_AA64PFR0_EL1": "0x110011",
        "ID_AA64DFR0_EL1": "0x6",
    }


def test_a_torn_heartbeat_line_is_no_beat() -> None:
    # The line being printed at a migration's switch-over is split between two consoles.
    assert parse_beat(BEAT[:30]) is None
    assert parse_beat("MIDR_EL1=0x00000000414fd0c1 ID_AA64PFR0_EL1=0x0") is None


def test_the_psci_version_comes_from_the_kernel_record_the_program_prints() -> None:
    console = "6,20,0,-;psci: PSCIv1.1 detected in firmware.\n" + BEAT
    assert boot_facts(console) == {"psci_version": "1.1"}
    assert boot_facts(BEAT) == {"psci_version": None}


@pytest.mark.parametrize("text", ["neoverse-n1", "neoverse-n1:", ":6.12", "neoverse-n1:6.13"])
def test_a_host_spec_needs_a_cpu_and_a_known_kernel_series(text: str) -> None:
    with pytest.raises(InputError, match=f"^--from {text}: "):
        HostSpec.parse(text, "--from")


def test_a_host_spec_names_cpu_and_kernel() -> None:
    assert HostSpec.parse("cortex-a76:7.2", "--to") == HostSpec("cortex-a76", "7.2")


def test_the_agent_runs_commands_with_exactly_the_environment_given(tmp_path: Path) -> None:
    answer = Agent().handle(
        {
            "op": "run",
            "argv": ["/bin/sh", "-c", "cat; env | sort"],
            "stdin": base64.b64encode(b"<domain/>\n").decode(),
            "env": {"LC_ALL": "C", "HOME": str(tmp_path)},
        }
    )
    out = base64.b64decode(answer["stdout"]).decode().splitlines()
    assert answer["status"] == 0
    assert out[0] == "<domain/>"
    assert [line for line in out[1:] if not line.startswith(("PWD=", "SHLVL=", "_="))] == [
        f"HOME={tmp_path}",
        "LC_ALL=C",
    ]


def test_the_agent_writes_and_reads_files_and_names_its_failures(tmp_path: Path) -> None:
    agent = Agent()
    path = tmp_path / "a" / "b"
    assert agent.handle({"op": "write", "path": str(path), "data": "aGk=", "mode": 0o600}) == {}
    assert path.read_bytes() == b"hi"
    assert path.stat().st_mode & 0o777 == 0o600
    assert agent.handle({"op": "read", "path": str(path)}) == {"data": "aGk="}
    assert agent.handle({"op": "read", "path": str(tmp_path / "none")})["error"].startswith(
        "FileNotFoundError"
    )
    assert agent.handle({"op": "reboot"}) == {"error": "unknown op 'reboot'"}


def test_the_agent_says_hello_then_answers_each_request_by_id() -> None:
    requests = io.BytesIO(b'{"op": "run", "argv": ["true"], "id": 7}\nnot json\n')
    answers = io.BytesIO()
    serve(requests, answers)
    hello, answer = (json.loads(line) for line in answers.getvalue().splitlines())
    assert hello["format"] == AGENT_FORMAT
    assert hello["ready"]
    assert answer["id"] == 7
    assert answer["status"] == 0


def test_the_link_reader_exits_once_qemu_closed_its_pipe_though_the_link_never_ends(
    tmp_path: Path,
) -> None:
    # A destination QEMU waits for its exec: command after reading the whole stream.
    link = tmp_path / "link"
    os.mkfifo(link)
    writer = os.open(link, os.O_RDWR)  # keeps the link open: it never reaches its end
    reader = subprocess.Popen(
        [sys.executable, "-m", "qemu_errata.nested.link_reader", str(link)],
        stdout=subprocess.PIPE,
    )
    try:
        os.write(writer, b"stream")
        assert reader.stdout is not None
        assert reader.stdout.read(6) == b"stream"
        reader.stdout.close()
        os.write(writer, b"x")  # not needed to notice; only proves the link is still open
        assert reader.wait(10) == 0
    finally:
        reader.kill()
        os.close(writer)


def test_a_report_before_anything_ran_is_a_valid_failed_nested_migrate_document() -> None:
    report = Report("m.json", HostSpec("neoverse-n1", "6.12"), HostSpec("neoverse-n1", "7.2"), True)
    document = report.to_json()
    validate(document, "nested-migrate")
    assert document["outcome"] == "failed"
    assert document["refused_by"] is None
