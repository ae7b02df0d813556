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

_HEX_PER_ID = 20  # 80 random bits drawn per id (as hex), 74 of them used
_BLOCK_HEX = _HEX_PER_ID * 512
_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))  # 2 bits kept


class _Pool:
    block = ""
    at = _BLOCK_HEX
    lock = threading.Lock()


def new_id() -> str:
    """`xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`: 48 bits of Unix milliseconds, the version,
    then 74 random bits around the variant (`y` is 8, 9, a or b)."""
    with _Pool.lock:
        at = _Pool.at
        if at >= _BLOCK_HEX:
            _Pool.block, at = os.urandom(_BLOCK_HEX // 2).hex(), 0
        _Pool.at = at + _HEX_PER_ID
        r = _Pool.block[at:at + _HEX_PER_ID]
    t = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    return f"{t[:8]}-{t[8:]}-7{r[1:4]}-{_VARIANT[r[4]]}{r[5:8]}-{r[8:]}"
