"""Task ids: time-ordered UUIDs (the version 7 layout of RFC 9562) whose other 74 bits are
random, drawn from the OS's CSPRNG in blocks: unguessable, and sorted by creation time.

Time first: each new id sorts after the ones before it, so the store's index on ids grows at
its end (one page written per commit) instead of one random page per row; 74 random bits keep
an id unguessable from any other (a task's id tells when it was made, to the millisecond,
which its `created_at` says anyway). `uuid.uuid4()` makes one `getrandom` system call per id;
on the request path that call releases the GIL, and under load the writer thread then holds
it for a switch interval. Reading 5 KiB at a time makes it one call per 512 ids.
"""

from __future__ import annotations

import os
import threading
import time

_ID_BYTES = 10  # 80 random bits drawn per id, 74 of them used
_BLOCK_BYTES = _ID_BYTES * 512


class _Pool:
    block = b""
    at = _BLOCK_BYTES
    lock = threading.Lock()


def new_id() -> str:
    """`xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`: 48 bits of Unix milliseconds, the version,
    then 74 random bits around the variant."""
    with _Pool.lock:
        at = _Pool.at
        if at >= _BLOCK_BYTES:
            _Pool.block, at = os.urandom(_BLOCK_BYTES), 0
        _Pool.at = at + _ID_BYTES
        random = _Pool.block[at:at + _ID_BYTES]
    raw = bytearray((time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF).to_bytes(6, "big"))
    raw += random
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7 over 4 of the 80 random bits
    raw[8] = 0x80 | (raw[8] & 0x3F)  # the RFC variant over 2 more
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
