"""Whether a domain XML could name the pool namespace, in any encoding a parser might read it in.

The hook parses only documents that could concern a pool VM, and refuses those it
cannot read exactly as libvirt (libxml2) does. A namespace can be written out
literally, spelled with references (``&#117;rn:...``, entities), or encoded so that
its bytes differ (UTF-16/32, EBCDIC, UTF-7, any encoding the XML declaration
names). A document in which no such reading shows the namespace's prefix or a
``&`` carries no pool metadata for any parser; everything else may. Decoding is
chunked, so its memory stays a small multiple of the chunk, not of the document.
"""

from __future__ import annotations

import codecs

from qemu_errata.core.pool_namespace import POOL_NAMESPACE_PREFIX

_MARKERS = (POOL_NAMESPACE_PREFIX, "&")
_RAW_MARKERS = tuple(marker.encode() for marker in _MARKERS)
# Readings that are not byte-for-byte ASCII, and the first bytes that make a parser
# choose them without a declaration: a NUL or a byte-order mark (UTF-16/32), or "<?xm"
# in EBCDIC. EBCDIC code pages agree on every character of the markers, so cp037
# stands for them all (and for the IBM1047 that Python lacks).
_WIDE_READINGS = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_EBCDIC_READING = "cp037"
_EBCDIC_SIGNATURE = b"\x4c\x6f\xa7\x94"
_ALIASES = {  # libxml2's names for encodings Python knows by others
    "ucs-2": "utf-16-be",
    "ucs2": "utf-16-be",
    "iso-10646-ucs-2": "utf-16-be",
    "ucs-4": "utf-32-be",
    "ucs4": "utf-32-be",
    "iso-10646-ucs-4": "utf-32-be",
    "ibm1047": _EBCDIC_READING,
    "cp1047": _EBCDIC_READING,
    "ebcdic": _EBCDIC_READING,
}
_READINGS = (*_WIDE_READINGS, _EBCDIC_READING)
_BOTH_ENDIANS = {"utf-16": _WIDE_READINGS[:2], "utf-32": _WIDE_READINGS[2:]}
_HEAD = 1024  # bytes in which an XML declaration (and its encoding) can be
_NAME_CHARS = 64  # longer than any encoding name
_CHUNK = 1 << 20
_OVERLAP = max(len(marker) for marker in _MARKERS) - 1
# Encodings expat reads natively and as libxml2 does, in which every byte '<' is the
# character '<' (so markup can be bounded by bytes); the hook reads pool VMs in these only.
READ_BY_THE_HOOK = ("UTF-8", "US-ASCII", "ISO-8859-1")
# The first bytes by which libxml2 recognises an encoding expat has no reader for.
_UNREAD_SIGNATURES = {
    b"\x00\x00\x00<": "UCS-4 (big-endian)",
    b"<\x00\x00\x00": "UCS-4 (little-endian)",
    b"\x00\x00<\x00": "UCS-4 (2143)",
    b"\x00<\x00\x00": "UCS-4 (3412)",
    b"\x00\x00\xfe\xff": "UTF-32 (big-endian)",
    b"\xff\xfe\x00\x00": "UTF-32 (little-endian)",
    _EBCDIC_SIGNATURE: "EBCDIC",
}


def may_name_the_pool(xml: bytes | bytearray) -> bool:
    """False only if no reading of ``xml`` holds the pool namespace's prefix or a reference."""
    if any(marker in xml for marker in _RAW_MARKERS):
        return True
    readings = [*_implied_readings(bytes(xml[:4])), *declared_encodings(xml)]
    for reading in readings:
        try:
            codec = codecs.lookup(_ALIASES.get(reading.lower(), reading)).name
            if _holds_a_marker(xml, codec):
                return True
        except (LookupError, UnicodeError):  # a name only iconv knows, or no BOM: may be ours
            return True
    return False


def _holds_a_marker(xml: bytes | bytearray, codec: str) -> bool:
    """Whether ``xml`` read in ``codec`` holds a marker; fixed-width readings are searched as
    bytes (a match out of step with the characters only makes the answer cautious)."""
    if codec in _BOTH_ENDIANS:
        return any(_holds_a_marker(xml, order) for order in _BOTH_ENDIANS[codec])
    if codec in _READINGS:
        return any(marker.encode(codec) in xml for marker in _MARKERS)
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    return _decoded_holds_a_marker(xml, decoder)


def _implied_readings(start: bytes) -> tuple[str, ...]:
    if b"\0" in start or start[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return _WIDE_READINGS
    return (_EBCDIC_READING,) if start == _EBCDIC_SIGNATURE else ()


def declared_encodings(xml: bytes | bytearray) -> set[str]:
    """Every encoding name an XML declaration could give, whatever the document's encoding."""
    head = xml[:_HEAD]
    texts = [head.decode("latin-1")]
    texts += [head.decode(reading, errors="replace") for reading in _READINGS]
    return {name for text in texts for name in _names_after_encoding(text)}


def _names_after_encoding(text: str) -> list[str]:
    """The quoted values after each ``encoding =`` in ``text`` (no ``re``: start-up time)."""
    names = []
    start = text.find("encoding")
    while start >= 0:
        rest = text[start + len("encoding") :].lstrip(" \t\r\n")
        if rest.startswith("="):
            rest = rest[1:].lstrip(" \t\r\n")
            end = rest.find(rest[:1], 1) if rest[:1] in ("'", '"') else -1
            if 1 < end <= _NAME_CHARS:
                names.append(rest[1:end])
        start = text.find("encoding", start + 1)
    return names


def unread_encoding(xml: bytes | bytearray) -> str | None:
    """The encoding a parser would read ``xml`` in when it is not ASCII-compatible; else None."""
    start = bytes(xml[:4])
    if start in _UNREAD_SIGNATURES:
        return _UNREAD_SIGNATURES[start]
    if start[:2] in (b"\xfe\xff", b"\xff\xfe") or b"\0" in start:
        return "UTF-16"
    return None


def _decoded_holds_a_marker(xml: bytes | bytearray, decoder: codecs.IncrementalDecoder) -> bool:
    tail = ""
    for start in range(0, len(xml), _CHUNK):
        text = tail + decoder.decode(xml[start : start + _CHUNK], start + _CHUNK >= len(xml))
        if any(marker in text for marker in _MARKERS):
            return True
        tail = text[-_OVERLAP:]
    return False
