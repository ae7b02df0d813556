"""Task ids: time-ordered UUIDs (the version 7 layout of RFC 9562) whose other 74 bits are
random, drawn from the OS's CSPRNG in blocks: unguessable, and sorted by creation time.

Time first: each new id sorts after the ones before it, so the store's index on ids grows at
its end (one page written per commit) instead of one random page per row; 74 random bits keep
an id unguessable from any other (a task's id tells when it was made, to the millisecond,
which its `created_at` says anyway). `uuid.uuid4()` makes one `getrandom` system call per id;
on the request path that call releases the GIL, and under load the writer thread then holds
it for a switch interval. Reading 5 KiB at a time makes it one call per 512 ids, and the
random halves of those 512 ids are formatted together then; an id is its millisecond's
prefix (formatted once per millisecond) and one of them, taken without a lock (`list.pop`
is atomic).
"""

from __future__ import annotations

import os
import threading
import time
from typing import ClassVar

_PER_BLOCK = 512
_HEX_PER_ID = 20  # 80 random bits drawn per id (as hex), 74 of them used
_VARIANT = dict(zip("0123456789abcdef", "89ab89ab89ab89ab", strict=True))  # 2 bits kept


class _Pool:
    suffixes: ClassVar[list[str]] = []  # "7xxx-yxxx-xxxxxxxxxxxx", taken from the end
    stamp: tuple[int, str] = (-1, "")  # (Unix milliseconds, "xxxxxxxx-xxxx-") as one value
    lock = threading.Lock()  # refills only


def new_id() -> str:
    """`xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`: 48 bits of Unix milliseconds, the version,
    then 74 random bits around the variant (`y` is 8, 9, a or b)."""
    ms = time.time_ns() // 1_000_000
    stamp = _Pool.stamp
    if stamp[0] != ms:
        t = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
        stamp = _Pool.stamp = (ms, f"{t[:8]}-{t[8:]}-")
    try:
        return stamp[1] + _Pool.suffixes.pop()
    except IndexError:
        return stamp[1] + _refill()


def _refill() -> str:
    """A new block of random halves; returns one of them (the others go to the pool)."""
    with _Pool.lock:
        if not _Pool.suffixes:
            block = os.urandom(_HEX_PER_ID * _PER_BLOCK // 2).hex()
            _Pool.suffixes = [
                f"7{r[1:4]}-{_VARIANT[r[4]]}{r[5:8]}-{r[8:]}"
                for r in (block[i:i + _HEX_PER_ID] for i in range(0, len(block), _HEX_PER_ID))
            ]
        return _Pool.suffixes.pop()


def _forget_pool() -> None:
    """A forked child (a pre-forking server's worker) draws its own random block: a copy of
    the parent's would repeat the parent's ids, and its siblings'."""
    _Pool.suffixes = []
    _Pool.lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)
