"""qemu-check's pure parts and its standard-library QMP client's framing.

The QMP client is run against a stand-in QEMU on a real unix socket, for the
protocol framing only (greeting, negotiation, events between a command and
its answer, error answers, a peer that dies); the real QEMU is the nested
test's (tests/nested/test_qemu_check.py).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from support.imports import run_without_extras
from support.schemas import validate

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.errors import QmpCommandError, QmpError
from qemu_errata.reports.qemu_check import describe, qemu_check_json
from qemu_errata.vmm.names import QemuSeries
from qemu_errata.vmm.qemu_check import CheckReport, SysregOffer, console_midr, sysreg_offer
from qemu_errata.vmm.qmp_wire import QmpConnection, listen
from qemu_errata.vmm.verify import Difference, Unchecked, VerifyReport


def test_a_qemu_without_sysreg_properties_lacks_every_field_by_its_newest_name() -> None:
    catalogue = load_catalogue()
    offer = sysreg_offer(frozenset({"midr", "pmu", "sve"}), catalogue)
    settable = [
        f for r in catalogue.values() for f in r.fields if QemuSeries.V10.sets(f, catalogue)
    ]
    assert offer.offered == ()
    assert len(offer.lacking) == len(settable) > 300
    assert {"SYSREG_ID_AA64MMFR0_EL1_PARange", "SYSREG_MIDR_EL1_PartNum"} <= set(offer.lacking)


def test_a_property_of_the_older_series_counts_as_offered() -> None:
    offer = sysreg_offer(frozenset({"SYSREG_ID_AA64MMFR0_EL1_PARANGE"}), load_catalogue())
    assert offer.offered == ("SYSREG_ID_AA64MMFR0_EL1_PARANGE",)
    assert "SYSREG_ID_AA64MMFR0_EL1_PARange" not in offer.lacking


def test_the_guest_kernels_first_line_names_its_midr() -> None:
    line = "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x414fd0c1]"
    assert console_midr(line) == 0x414FD0C1
    assert console_midr("[    0.000000] Linux version 7.2.13") is None


def stand_in_qemu(path: Path, answers: list[bytes]) -> threading.Thread:
    """A peer that connects to ``path``, greets, and sends ``answers`` one per line it reads."""

    def speak() -> None:
        with socket.socket(socket.AF_UNIX) as peer:
            peer.connect(str(path))
            peer.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
            reader = peer.makefile("rb")
            for answer in answers:
                request = json.loads(reader.readline())
                peer.sendall(answer.replace(b"ID", str(request["id"]).encode()))

    thread = threading.Thread(target=speak, daemon=True)
    thread.start()
    return thread


def test_commands_get_their_answer_past_events_and_errors_raise(tmp_path: Path) -> None:
    path = tmp_path / "qmp.sock"
    with listen(str(path)) as listener:
        thread = stand_in_qemu(
            path,
            [
                b'{"return": {}, "id": ID}\r\n',
                b'{"event": "RESUME", "data": {}}\r\n'
                b'{"return": {"status": "running"}, "id": ID}\r\n',
                b'{"error": {"class": "GenericError", "desc": "no such type"}, "id": ID}\r\n',
            ],
        )
        qmp = QmpConnection.accept(listener, "stand-in", 5.0, lambda: True)
        assert qmp.command("query-status") == {"status": "running"}
        with pytest.raises(QmpCommandError, match=r"^qom-list-properties: no such type$"):
            qmp.command("qom-list-properties", {"typename": "x"})
        qmp.close()
        thread.join(5)


def test_a_qemu_that_dies_before_connecting_is_reported_at_once(tmp_path: Path) -> None:
    with listen(str(tmp_path / "qmp.sock")) as listener:
        started = time.monotonic()
        with pytest.raises(QmpError, match=r"^dead: did not connect over QMP$"):
            QmpConnection.accept(listener, "dead", 30.0, lambda: False)
        assert time.monotonic() - started < 5


def test_the_qmp_readers_import_without_qemu_qmp() -> None:
    """qemu-check runs in the nested host, which has no qemu.qmp."""
    completed = run_without_extras(
        "import qemu_errata.vmm.qmp\nimport qemu_errata.vmm.qemu_check\n"
    )
    assert completed.returncode == 0, completed.stderr


def test_the_text_report_names_each_step_and_every_item() -> None:
    lacking = sysreg_offer(frozenset(), load_catalogue()).lacking
    report = CheckReport(
        qemu="11.1.3 (Debian 1:11.1.3+ds-1)",
        kvm=True,
        sysreg=SysregOffer((), lacking),
        impl_cpu=False,
        needs=(),
        arguments=("-machine", "virt,gic-version=3", "-cpu", "host"),
        vm_console="[    0.000000] Booting Linux on physical CPU 0x0 [0x414fd0c1]",
        verify=VerifyReport(
            (),
            (Unchecked("no SYSREG properties", ("ID_AA64PFR0_EL1", "ID_AA64PFR1_EL1")),),
            ("no list",),
            0,
        ),
    )
    assert describe(qemu_check_json(report)).splitlines() == [
        "QEMU 11.1.3 (Debian 1:11.1.3+ds-1), KVM enabled.",
        f"SYSREG properties: offers 0 of the {len(lacking)} ID register fields a QEMU series "
        "can set.",
        f"  lacks all {len(lacking)} (--json lists them by name)",
        "Target implementation list: the virt machine lacks impl-cpu.",
        "VM: -machine virt,gic-version=3 -cpu host",
        "  runs; its console: [    0.000000] Booting Linux on physical CPU 0x0 [0x414fd0c1]",
        "  its kernel names MIDR 0x414fd0c1",
        "verify: 0 register fields compared, 0 differences.",
        "  Not checked:",
        "    no SYSREG properties:",
        "      ID_AA64PFR0_EL1; ID_AA64PFR1_EL1",
        "  Note: no list",
        # The last line says why the exit status is 1, though nothing differed.
        "qemu-check failed: the VM runs, but 2 items could not be checked (above) and 0 register "
        "fields compared, so nothing vouches that it presents the model.",
    ]
    assert report.ok is False
    validate(qemu_check_json(report), "qemu-check")


def test_the_text_report_counts_one_field_and_one_difference_in_the_singular() -> None:
    difference = Difference(
        "ID_AA64PFR1_EL1",
        "SSBS",
        "field-differs",
        {"model": "0x1", "guest": "0x2"},
        "ID_AA64PFR1_EL1.SSBS: the model sets IMP (0x1), the guest has SSBS2 (0x2)",
    )
    report = CheckReport(
        qemu="11.1.3 (Debian 1:11.1.3+ds-1)",
        kvm=True,
        sysreg=SysregOffer(("ID_AA64PFR1_EL1.SSBS",), ()),
        impl_cpu=True,
        needs=(),
        arguments=("-cpu", "host"),
        vm_console="[    0.000000] Booting Linux on physical CPU 0x0 [0x414fd0c1]",
        verify=VerifyReport((difference,), (), (), 1),
    )
    lines = describe(qemu_check_json(report)).splitlines()
    assert "verify: 1 register field compared, 1 difference." in lines
