"""Runs inside a fleet host: a link's bytes to stdout, until the reader of stdout goes away.

A destination QEMU reads its incoming migration from a command
(``-incoming exec:...``) and, once it has the whole stream, closes the pipe
and waits for the command to exit. ``cat`` of the link's device would never
exit: the link has no end of file, and nothing more arrives to make its next
write fail. This copies while watching its stdout, and exits as soon as the
pipe's reader has closed it (poll reports an error on the write end).
Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys

_CHUNK = 1 << 16


def copy(device: str) -> None:
    source = os.open(device, os.O_RDONLY | os.O_NONBLOCK)
    poller = select.poll()
    poller.register(source, select.POLLIN)
    poller.register(1, select.POLLERR)
    while True:
        for descriptor, events in poller.poll():
            if descriptor == 1 and events & (select.POLLERR | select.POLLHUP):
                return
            if descriptor == source and events & select.POLLIN:
                data = os.read(source, _CHUNK)
                while data:
                    written = os.write(1, data)
                    data = data[written:]


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        copy(sys.argv[1])
