"""Run a Python program with its wall clock offset, without touching the machine's clock:

    python -m tests.faults.clock_offset -m afterwork worker tests.faults.fault_app:app

AFTERWORK_TEST_CLOCK_OFFSET (seconds) shifts the clock from the start; AFTERWORK_TEST_CLOCK_FILE
names a file holding the offset, read every 50 ms, so a test can make the clock jump (either
way) while the program runs.

What is offset: everything a process reads as the wall clock (time.time, time.time_ns,
CLOCK_REALTIME); that is what differs between machines whose clocks are skewed, and what jumps
when a clock is set or stepped by NTP. What is not: CLOCK_MONOTONIC and CLOCK_BOOTTIME. They
are one counter in the kernel for every process of a machine and cannot be set, so no real
fault skews them between two processes of one machine. SQLite's leases use CLOCK_BOOTTIME and
PostgreSQL's the server's clock, so an offset here reaches every clock a lease could have been
judged by before (afterwork compared time.time() of the runners).
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time

_offset = float(os.environ.get("AFTERWORK_TEST_CLOCK_OFFSET", "0") or 0)
_real_time, _real_time_ns = time.time, time.time_ns
_real_gettime, _real_gettime_ns = time.clock_gettime, time.clock_gettime_ns


def _time() -> float:
    return _real_time() + _offset


def _time_ns() -> int:
    return _real_time_ns() + int(_offset * 1e9)


def _clock_gettime(clock: int) -> float:
    value = _real_gettime(clock)
    return value + _offset if clock == time.CLOCK_REALTIME else value


def _clock_gettime_ns(clock: int) -> int:
    value = _real_gettime_ns(clock)
    return value + int(_offset * 1e9) if clock == time.CLOCK_REALTIME else value


def _follow(path: str) -> None:
    global _offset
    while True:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                _offset = float(text)
        except (OSError, ValueError):
            pass
        _real_sleep(0.05)


_real_sleep = time.sleep
time.time, time.time_ns = _time, _time_ns
time.clock_gettime, time.clock_gettime_ns = _clock_gettime, _clock_gettime_ns  # type: ignore[assignment]
if os.environ.get("AFTERWORK_TEST_CLOCK_FILE"):
    threading.Thread(target=_follow, args=(os.environ["AFTERWORK_TEST_CLOCK_FILE"],),
                     daemon=True).start()

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        sys.exit("usage: python -m tests.faults.clock_offset -m MODULE [ARGS...]")
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
