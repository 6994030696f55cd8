"""A small client of the GDB remote serial protocol, for QEMU's gdbstub.

Only what the qemu probe needs: read registers, memory and target
description files, plant a breakpoint and run to it. There is no
well-maintained Python client of this protocol, hence this one.
"""

from __future__ import annotations

import asyncio
import contextlib

# QEMU 7.2 announces PacketSize=1000 (hex): keep every request and reply below it.
_MEMORY_CHUNK = 0x600  # bytes per 'm' request: twice that in hex characters
_FEATURE_CHUNK = 0x800


class GdbError(Exception):
    """The stub answered with an error, or not in the protocol."""


def checksum(payload: bytes) -> int:
    return sum(payload) & 0xFF


def frame(payload: str) -> bytes:
    """``$payload#checksum``, as sent on the wire."""
    data = payload.encode("ascii")
    return b"$" + data + b"#" + f"{checksum(data):02x}".encode("ascii")


def unescape(data: bytes) -> bytes:
    """Undo the binary escaping of replies: ``}`` then the byte XOR 0x20."""
    out = bytearray()
    escaped = False
    for byte in data:
        if escaped:
            out.append(byte ^ 0x20)
            escaped = False
        elif byte == ord("}"):
            escaped = True
        else:
            out.append(byte)
    return bytes(out)


class GdbRemote:
    """One connection to a gdbstub; requests are answered in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def request(self, payload: str) -> bytes:
        """Send one packet and return the reply's payload (an ``E`` reply raises)."""
        await self._send(payload)
        reply = await self._receive()
        if len(reply) == 3 and reply.startswith(b"E"):
            raise GdbError(f"gdbstub refused {payload[:24]!r}: {reply.decode('ascii')}")
        return reply

    async def read_register(self, number: int) -> int:
        """A register by the number the target description gives it."""
        reply = await self.request(f"p{number:x}")
        try:
            return int.from_bytes(bytes.fromhex(reply.decode("ascii")), "little")
        except ValueError:
            raise GdbError(f"register {number}: not a hex value: {reply[:40]!r}") from None

    async def read_memory(self, address: int, length: int) -> bytes:
        data = bytearray()
        while len(data) < length:
            size = min(_MEMORY_CHUNK, length - len(data))
            reply = await self.request(f"m{address + len(data):x},{size:x}")
            try:
                chunk = bytes.fromhex(reply.decode("ascii"))
            except ValueError:
                raise GdbError(f"memory at {address:#x}: not hex: {reply[:40]!r}") from None
            if len(chunk) != size:
                raise GdbError(f"memory at {address:#x}: {len(chunk)} bytes instead of {size}")
            data += chunk
        return bytes(data)

    async def read_feature(self, annex: str) -> str:
        """A target description file (``qXfer:features:read``), e.g. system-registers.xml."""
        text = bytearray()
        while True:
            reply = await self.request(
                f"qXfer:features:read:{annex}:{len(text):x},{_FEATURE_CHUNK:x}"
            )
            if reply[:1] not in (b"m", b"l"):
                raise GdbError(f"{annex}: not offered by the gdbstub")
            text += reply[1:]
            if reply[:1] == b"l":
                return text.decode("utf-8")

    async def insert_breakpoint(self, address: int) -> None:
        if await self.request(f"Z0,{address:x},4") != b"OK":
            raise GdbError(f"cannot set a breakpoint at {address:#x}")

    async def continue_until_stop(self) -> bytes:
        """Resume the CPU and wait for the stop reply (e.g. a breakpoint hit)."""
        await self._send("c")
        return await self._receive()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # the peer may already be gone
            await self._writer.wait_closed()

    async def _send(self, payload: str) -> None:
        packet = frame(payload)
        while True:
            self._writer.write(packet)
            await self._writer.drain()
            ack = await self._reader.readexactly(1)
            if ack == b"+":
                return
            if ack != b"-":
                raise GdbError(f"expected an acknowledgement, got {ack!r}")

    async def _receive(self) -> bytes:
        while True:
            start = await self._reader.readexactly(1)
            if start != b"$":
                continue  # stray acknowledgements or noise before a packet
            data = await self._reader.readuntil(b"#")
            payload = data[:-1]
            sent_sum = await self._reader.readexactly(2)
            if sent_sum.lower() == f"{checksum(payload):02x}".encode("ascii"):
                self._writer.write(b"+")
                return unescape(payload)
            self._writer.write(b"-")
