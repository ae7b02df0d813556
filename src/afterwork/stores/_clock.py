"""The clock leases are judged by, for a store without a server of its own (SQLite).

Every lease time (`lease_until`) is written and compared on the store's clock, never on the
wall clock of whichever process reads it. PostgreSQL has a clock of its own (`clock_timestamp()`
in the SQL). A SQLite file is shared only by processes of one machine (WAL needs shared
memory), so its clock is the machine's CLOCK_BOOTTIME: one counter in the kernel for every
process, it never jumps when the wall clock is set, stepped by NTP or skewed, and it keeps
counting through suspend (a lease taken before a suspend is judged by the time really gone).

It restarts at zero on a reboot: a lease written before the reboot would then look far in the
future. The store records which boot its lease times belong to (`LEASE_CLOCK`, with the
kernel's boot id) and expires every lease written under another boot (their owners are gone).

Where the kernel offers no CLOCK_BOOTTIME or boot id (macOS, Windows) the lease clock is the
wall clock, as afterwork's leases were before: a wall-clock jump on such a machine can expire a
live lease.
"""

from __future__ import annotations

import time
from pathlib import Path

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str | None:
    try:
        return BOOT_ID_FILE.read_text().strip() or None
    except OSError:
        return None


_BOOT_ID = _boot_id() if hasattr(time, "CLOCK_BOOTTIME") else None

if _BOOT_ID is not None:
    LEASE_CLOCK = f"boottime:{_BOOT_ID}"

    def lease_now() -> float:
        """Seconds on the machine's boot clock (the same value in every process)."""
        return time.clock_gettime(time.CLOCK_BOOTTIME)
else:  # pragma: no cover - not Linux
    LEASE_CLOCK = "wall"

    def lease_now() -> float:
        """The wall clock: no machine-wide monotonic clock with a boot id here."""
        return time.time()
