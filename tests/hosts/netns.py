"""Hosts for the tests: one network namespace per host (`ip netns`), each joined by a veth
pair to a bridge in the root namespace, where the store is reached. Every name carries a
random tag, and `remove` deletes every namespace, link and bridge made (namespaces take their
end of each pair with them), also after a failure."""

from __future__ import annotations

import random
import subprocess
import uuid
from dataclasses import dataclass, field


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str
    link: str  # the root namespace's end of its veth pair: set down to cut the host off

    def run(self, *argv: str) -> list[str]:
        """argv, to run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Network:
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    subnet: str = field(default_factory=lambda: f"10.213.{random.randrange(1, 255)}")
    hosts: list[Host] = field(default_factory=list)
    _made: list[tuple[str, str]] = field(default_factory=list)  # ("netns"|"link", name)

    @property
    def bridge(self) -> str:
        return f"awb{self.tag}"

    @property
    def gateway(self) -> str:
        """The bridge's address: where the hosts reach the store."""
        return f"{self.subnet}.1"

    def create(self) -> Network:
        ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", self.bridge))
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str) -> Host:
        n = len(self.hosts) + 1
        host = Host(f"aw{self.tag}-{name}", f"{self.subnet}.{10 + n}", f"awv{self.tag}{n}")
        inside = f"awp{self.tag}{n}"
        ip("netns", "add", host.namespace)
        self._made.append(("netns", host.namespace))
        ip("link", "add", host.link, "type", "veth", "peer", "name", inside)
        self._made.append(("link", host.link))
        ip("link", "set", inside, "netns", host.namespace)
        ip("link", "set", host.link, "master", self.bridge, "up")
        ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", inside)
        ip("-n", host.namespace, "link", "set", inside, "up")
        ip("-n", host.namespace, "link", "set", "lo", "up")
        self.hosts.append(host)
        return host

    def cut(self, host: Host) -> None:
        ip("link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        ip("link", "set", host.link, "up")

    def remove(self) -> list[str]:
        """Delete all that was made, newest first; what could not be deleted (for the test's
        failure message: nothing is left behind silently)."""
        left = []
        for kind, name in reversed(self._made):
            args = ("netns", "delete", name) if kind == "netns" else ("link", "delete", name)
            try:
                ip(*args)
            except RuntimeError as exc:
                if "Cannot find" not in str(exc) and "No such" not in str(exc):
                    left.append(str(exc))
        self._made.clear()
        return left
