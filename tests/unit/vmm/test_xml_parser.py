"""The one hardened XML parser: nothing in a document reaches outside it, and nobody else parses."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest
from lxml import etree

import qemu_errata
from qemu_errata.errors import InputError
from qemu_errata.vmm.xml_parser import parse_xml

SECRET = "the-content-of-a-local-file"


def test_an_internal_entity_stays_a_reference() -> None:
    root = parse_xml(b'<!DOCTYPE x [<!ENTITY e "expanded">]><x>&e;</x>', "doc")
    assert "expanded" not in etree.tostring(root, encoding="unicode")
    assert [entity.name for entity in root] == ["e"]  # type: ignore[attr-defined]  # an _Entity


def test_an_external_file_entity_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    document = f'<!DOCTYPE x [<!ENTITY leak SYSTEM "file://{secret}">]><x>&leak;</x>'
    root = parse_xml(document.encode(), "doc")
    assert SECRET not in etree.tostring(root, encoding="unicode")


def test_an_external_dtd_is_not_loaded(tmp_path: Path) -> None:
    # A loaded DTD would give <x> the default attribute it declares.
    dtd = tmp_path / "x.dtd"
    dtd.write_text('<!ATTLIST x planted CDATA "from-the-dtd">')
    root = parse_xml(f'<!DOCTYPE x SYSTEM "file://{dtd}"><x/>'.encode(), "doc")
    assert root.get("planted") is None


def test_nothing_is_fetched_over_the_network() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        document = (
            f'<!DOCTYPE x SYSTEM "{url}/x.dtd" [<!ENTITY e SYSTEM "{url}/e">]><x>&e;</x>'
        ).encode()
        parse_xml(document, "doc")
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()


def test_nested_entities_are_refused() -> None:
    # "Billion laughs": each level multiplies the one below by ten; libxml2 stops it.
    levels = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">' for n in range(1, 10)
    ]
    document = f"<!DOCTYPE x [{''.join(levels)}]><x>&l9;</x>".encode()
    with pytest.raises(InputError, match="amplification"):
        parse_xml(document, "doc")


def test_a_huge_text_node_is_refused() -> None:
    with pytest.raises(InputError, match=r"^doc: not well-formed XML"):
        parse_xml(b"<x>" + b"a" * 10_000_001 + b"</x>", "doc")


def test_a_malformed_document_is_one_input_error_naming_it() -> None:
    with pytest.raises(InputError, match=r"^domain\.xml: not well-formed XML: .*line 1"):
        parse_xml(b"<domain><name></domain>", "domain.xml")


def test_blank_text_is_dropped_on_request() -> None:
    assert parse_xml(b"<x>\n  <y/>\n</x>", "doc", remove_blank_text=True).text is None
    assert parse_xml(b"<x>\n  <y/>\n</x>", "doc").text == "\n  "


_PARSING = {"XMLParser", "fromstring", "parse", "XML", "iterparse", "XMLPullParser"}


def test_no_other_module_of_the_package_parses_xml() -> None:
    package = Path(qemu_errata.__file__).parent
    parsers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr in _PARSING
        and isinstance(node.value, ast.Name)
        and node.value.id == "etree"
    )
    assert set(parsers) == {"vmm/xml_parser.py"}


def test_libxml2_messages_that_span_lines_are_one_line() -> None:
    """libxml2 ends some messages with a newline ("Unsupported encoding: detecting EBCDIC\\n")."""
    document = '<?xml version="1.0" encoding="IBM037"?><domain/>'.encode("cp037")
    with pytest.raises(InputError, match=r"^domain\.xml: not well-formed XML") as raised:
        parse_xml(document, "domain.xml")
    assert "\n" not in str(raised.value)
