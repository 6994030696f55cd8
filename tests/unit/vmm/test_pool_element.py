"""The pool element: one builder, read back to the same model, in the one namespace."""

from __future__ import annotations

import ast
from pathlib import Path

from lxml import etree
from support.pool_oracle import model_from_pool_element

import libvirt_hooks
import qemu_errata
from libvirt_hooks import domain as hook_domain
from qemu_errata.core import pool_namespace
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_METADATA_VERSION, POOL_NAMESPACE
from qemu_errata.core.record import replace
from qemu_errata.vmm import pool_element as pool_element_module
from qemu_errata.vmm.pool_element import pool_element

SMALL_MODEL = PoolModel(
    id_registers={"ID_AA64ISAR0_EL1": 0x11120},
    target_implementations=TargetImplementations(
        [TargetImplementation(0x414FD0C1, 0x0, None), TargetImplementation(0x411FD070, None, None)]
    ),
    timer_frequency_hz=25_000_000,
)

SMALL_ELEMENT = (
    '<qemu-errata:pool xmlns:qemu-errata="urn:qemu-errata:pool:1" version="1">'
    "<qemu-errata:targets>"
    '<qemu-errata:implementation midr="0x411fd070"/>'
    '<qemu-errata:implementation midr="0x414fd0c1" revidr="0x0"/>'
    "</qemu-errata:targets>"
    '<qemu-errata:timer frequency="25000000"/>'
    '<qemu-errata:registers group="id_registers">'
    '<qemu-errata:register name="ID_AA64ISAR0_EL1" value="0x11120"/>'
    "</qemu-errata:registers>"
    "</qemu-errata:pool>"
)


def test_the_element_of_a_small_model() -> None:
    assert etree.tostring(pool_element(SMALL_MODEL), encoding="unicode") == SMALL_ELEMENT


def test_the_element_is_in_the_pool_namespace_and_version() -> None:
    element = pool_element(SMALL_MODEL)
    assert etree.QName(element).namespace == POOL_NAMESPACE
    assert element.get("version") == str(POOL_METADATA_VERSION)


def test_the_element_reads_back_as_the_model() -> None:
    assert model_from_pool_element(pool_element(SMALL_MODEL), "test") == SMALL_MODEL


def test_accepted_lost_mitigations_ride_in_the_element_by_name() -> None:
    accepting = replace(SMALL_MODEL, accepted_lost_mitigations=("Spectre-v4", "Spectre-BHB"))
    element = pool_element(accepting)
    names = [e.get("name") for e in element.iterfind(f"{{{POOL_NAMESPACE}}}accepted")]
    assert names == ["Spectre-v4", "Spectre-BHB"]
    assert model_from_pool_element(element, "test") == accepting


def _sources() -> list[Path]:
    roots = [Path(qemu_errata.__file__).parent, Path(libvirt_hooks.__file__).parent]
    return [path for root in roots for path in root.rglob("*.py")]


def test_the_namespace_is_spelled_in_one_module() -> None:
    spelling = POOL_NAMESPACE.rsplit(":", 1)[0]
    assert [p.name for p in _sources() if spelling in p.read_text()] == ["pool_namespace.py"]


def test_only_pool_element_builds_the_pool_element() -> None:
    # Building it means making an lxml element whose tag is in our namespace.
    builders = {
        path.name
        for path in _sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"Element", "SubElement"}
        and "POOL" in "".join(ast.unparse(argument) for argument in node.args[:2])
    }
    assert builders <= {"pool_element.py"}


def test_the_writer_and_the_hook_reader_spell_no_name_of_the_vocabulary() -> None:
    """Element, attribute and group names come from core.pool_namespace (the version "1"
    is left out: the hook also defaults a vCPU count to "1"; __slots__ name attributes)."""
    vocabulary = {
        value
        for name, value in vars(pool_namespace).items()
        if name.isupper() and isinstance(value, str) and name not in {"PREFIX", "VERSION"}
    } | set(pool_namespace.REGISTER_GROUPS)
    readers = [Path(pool_element_module.__file__), Path(hook_domain.__file__)]
    spelled = set()
    for path in readers:
        tree = ast.parse(path.read_text())
        slots = {
            id(constant)
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__slots__"
            for constant in ast.walk(node.value)
        }
        spelled |= {
            (path.name, node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in vocabulary and id(node) not in slots
        }
    assert spelled == set()
