"""The one lxml parser of qemu-errata: every XML document is read through ``parse_xml``.

Domain XML may come from anyone who can define a domain, so nothing in a
document may reach outside it or grow without bound: no entity is expanded
(an ``&name;`` stays a reference, internal or external), no DTD is loaded,
nothing is fetched over the network, and lxml's limits on huge documents
stay on. The libvirt hook reads domain XML with its own expat reader
(libvirt_hooks.domain), which lxml's import time would not allow.
"""

from __future__ import annotations

from lxml import etree

from qemu_errata.errors import InputError


def parse_xml(data: bytes, origin: str, *, remove_blank_text: bool = False) -> etree._Element:
    """The root element of ``data``; InputError naming ``origin`` if it is not well-formed.

    ``remove_blank_text`` drops whitespace between elements, for a template whose
    elements take the indentation of the document they are copied into.
    """
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_blank_text=remove_blank_text,
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:  # libxml2's message may span lines: one line here
        raise InputError(f"{origin}: not well-formed XML: {' '.join(str(error).split())}") from None
