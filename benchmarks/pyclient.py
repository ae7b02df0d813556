"""Fallback load generator when wrk is absent: keep-alive HTTP/1.1 over asyncio streams.

    python -m benchmarks.pyclient --port 8000 --connections 32 --duration 10

Sends the same bodies as post.lua to 127.0.0.1 only, stops at the duration or at
``--max-requests``, and prints the same ``LOAD_JSON`` summary line as the wrk script.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time


def body(n: int) -> bytes:
    return json.dumps(
        {
            "hostname": f"host-{n}",
            "ip": f"192.0.2.{n % 256}",
            "cpus": 2 + n % 62,
            "memory_gb": 4 * (1 + n % 16),
            "os": "debian-12",
            "tags": ["bench", "web"],
        },
        separators=(",", ":"),
    ).encode()


class Client:
    def __init__(self, port: int, deadline: float, max_requests: int) -> None:
        self.port = port
        self.deadline = deadline
        self.max_requests = max_requests
        self.sent = 0
        self.failed = 0
        self.socket_errors = 0
        self.latencies: list[float] = []

    async def connection(self) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            self.socket_errors += 1
            return
        try:
            while time.monotonic() < self.deadline and self.sent < self.max_requests:
                self.sent += 1
                payload = body(self.sent)
                head = (
                    f"POST /abcd HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                )
                started = time.perf_counter()
                writer.write(head.encode() + payload)
                status = await self.response(reader)
                self.latencies.append(time.perf_counter() - started)
                if not 200 <= status < 400:
                    self.failed += 1
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.socket_errors += 1
        finally:
            writer.close()

    @staticmethod
    async def response(reader: asyncio.StreamReader) -> int:
        """Read one response with a Content-Length body; return its status code."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return int(lines[0].split()[1])


async def main(port: int, connections: int, duration: float, max_requests: int) -> None:
    started = time.monotonic()
    client = Client(port, started + duration, max_requests)
    await asyncio.gather(*(client.connection() for _ in range(connections)))
    seconds = time.monotonic() - started
    latencies = sorted(client.latencies) or [0.0]
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    summary = {
        "requests": len(client.latencies),
        "seconds": seconds,
        "failed": client.failed,
        "socket_errors": client.socket_errors,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
    }
    print("LOAD_JSON", json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    options = parser.parse_args()
    asyncio.run(main(options.port, options.connections, options.duration, options.max_requests))
