"""Task ids: random UUIDs (version 4), unguessable, drawn from the OS's CSPRNG in blocks.

`uuid.uuid4()` makes one `getrandom` system call per id; on the request path that call
releases the GIL, and under load the writer thread then holds it for a switch interval.
Reading 4 KiB at a time makes it one call per 256 ids, with the same randomness.
"""

from __future__ import annotations

import os
import threading

_BLOCK_BYTES = 16 * 256


class _Pool:
    block = b""
    at = _BLOCK_BYTES
    lock = threading.Lock()


def new_id() -> str:
    with _Pool.lock:
        at = _Pool.at
        if at >= _BLOCK_BYTES:
            _Pool.block, at = os.urandom(_BLOCK_BYTES), 0
        _Pool.at = at + 16
        raw = bytearray(_Pool.block[at:at + 16])
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
