"""Reading back the newc (cpio) archives the nested host's initramfs is made of."""

from __future__ import annotations


def read_newc(data: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, data) of each entry of a newc archive, up to the trailer."""
    entries: list[tuple[str, int, bytes]] = []
    offset = 0
    while True:
        assert data[offset : offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start : name_start + name_size - 1].decode()
        data_start = (name_start + name_size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries.append((name, mode, data[data_start : data_start + size]))
        offset = (data_start + size + 3) & ~3
