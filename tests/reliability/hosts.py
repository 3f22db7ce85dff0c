"""Hosts for multi-machine tests: Linux network namespaces joined by veth links, made by the test.

``Hosts`` builds one namespace per host name (``ip netns``), a bridge inside the first one (the
hub) and a veth link from every other host to that bridge, each host with its own address in a
private /24 that exists only inside these namespaces and on one extra veth end the test process
itself keeps on the bridge (so the test can read the hub's Redis; the worker hosts see only the
hub). Processes run on a host with ``ip netns exec``. ``close()`` kills every process left in the
namespaces and deletes them, whatever state the test left them in.

Also here: the hub's servers, each bound to the hub's address with a password: ``redis-server``
and a RabbitMQ node of the test's own (its own Erlang node name, cookie, data directory and epmd,
all inside the hub's namespace).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.processes import Proc

IP = shutil.which("ip") or "/usr/sbin/ip"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


class HostsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, no kernel support)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IP, *args], capture_output=True, text=True, check=check, timeout=20)


@dataclass(frozen=True)
class Host:
    name: str  # as the test calls it: hub, w1, w2
    netns: str
    address: str
    link: str  # this host's veth end (the hub's: the bridge)


class Hosts:
    """Namespaces ``names[0]`` (the hub, with the bridge) and ``names[1:]``, linked to it."""

    def __init__(self, names: tuple[str, ...] = ("hub", "w1", "w2")) -> None:
        pid = os.getpid()
        self.tag = f"g{pid % 100000}"
        self.subnet = f"10.{200 + pid % 50}.{(pid // 50) % 250}"
        self.hosts: dict[str, Host] = {}
        self._names = names
        self._test_link = f"{self.tag}t"

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    @property
    def hub(self) -> Host:
        return self.hosts[self._names[0]]

    def create(self) -> Hosts:
        if os.geteuid() != 0 or not Path(IP).exists():
            raise HostsUnavailable("network namespaces need root and iproute2's `ip`")
        try:
            self._create()
        except subprocess.CalledProcessError as exc:
            self.close()
            raise HostsUnavailable(f"`{' '.join(exc.cmd)}` failed: {exc.stderr.strip()}") from None
        return self

    def _create(self) -> None:
        hub_name, *others = self._names
        hub = Host(hub_name, f"{self.tag}-{hub_name}", f"{self.subnet}.1", "br0")
        self.hosts[hub_name] = hub
        _ip("netns", "add", hub.netns)
        _ip("-n", hub.netns, "link", "set", "lo", "up")
        _ip("-n", hub.netns, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub.netns, "addr", "add", f"{hub.address}/24", "dev", "br0")
        _ip("-n", hub.netns, "link", "set", "br0", "up")
        for number, name in enumerate(others, start=2):
            host = Host(name, f"{self.tag}-{name}", f"{self.subnet}.{number}", f"{self.tag}{name}")
            self.hosts[name] = host
            _ip("netns", "add", host.netns)
            _ip("-n", host.netns, "link", "set", "lo", "up")
            self._plug(host.link, host.netns, f"{host.address}/24")
        # The test's own end on the bridge, in the test's namespace: it reads the hub's Redis.
        self._plug(self._test_link, None, f"{self.subnet}.254/24")

    def _plug(self, link: str, netns: str | None, address: str) -> None:
        """A veth pair: ``link`` in ``netns`` (None: the test's namespace) with ``address``, its
        peer on the hub's bridge."""
        peer = f"{link}h"
        _ip("link", "add", link, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.hub.netns)
        _ip("-n", self.hub.netns, "link", "set", peer, "master", "br0")
        _ip("-n", self.hub.netns, "link", "set", peer, "up")
        where = ["-n", netns] if netns else []
        if netns:
            _ip("link", "set", link, "netns", netns)
        _ip(*where, "addr", "add", address, "dev", link)
        _ip(*where, "link", "set", link, "up")

    # ------------------------------------------------------------------ processes and links
    def run(self, host: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> Proc:
        return Proc([IP, "netns", "exec", self.hosts[host].netns, *argv], log_path, env)

    def pids(self, host: str) -> list[int]:
        found = _ip("netns", "pids", self.hosts[host].netns, check=False).stdout.split()
        return [int(pid) for pid in found if pid.isdigit()]

    def kill_all(self, host: str, sig: int = signal.SIGKILL) -> list[int]:
        """Every process on ``host`` gets ``sig`` (as when the machine loses power); their pids."""
        pids = self.pids(host)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return pids

    def link(self, host: str, up: bool) -> None:
        """Plug or unplug ``host``'s network cable (its veth end; the peer loses carrier too)."""
        target = self.hosts[host]
        _ip("-n", target.netns, "link", "set", target.link, "up" if up else "down")

    def link_bytes(self, host: str) -> dict[str, int]:
        """Bytes ``host`` received and sent on its link so far (its veth end's counters)."""
        target = self.hosts[host]
        shown = json.loads(_ip("-n", target.netns, "-s", "-j", "link", "show", "dev", target.link).stdout)
        stats = shown[0]["stats64"]
        return {"rx": int(stats["rx"]["bytes"]), "tx": int(stats["tx"]["bytes"])}

    def close(self) -> None:
        names = list(self.hosts)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = [pid for name in names for pid in self.kill_all(name, sig)]
            deadline = time.monotonic() + 3
            while alive and time.monotonic() < deadline:
                alive = [pid for name in names for pid in self.pids(name)]
                time.sleep(0.05)
        _ip("link", "del", self._test_link, check=False)
        for host in self.hosts.values():
            _ip("netns", "del", host.netns, check=False)
        self.hosts.clear()


def wait_port(address: str, port: int, timeout: float, proc: Proc | None = None) -> None:
    """Until something accepts TCP connections at ``address:port`` (the test reaches the bridge)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.argv[4:6]} exited:\n{proc.output()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens at {address}:{port} after {timeout:g} s")


def _private_file(path: Path, text: str) -> Path:
    """A configuration file holding a password: readable by its owner only, never on argv."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(text)
    return path


def start_redis(hosts: Hosts, host: str, password: str, workdir: Path) -> Proc:
    """``redis-server`` on ``host``'s address only, with a password (in a 0600 file, not argv)."""
    conf = _private_file(
        workdir / "redis.conf",
        f'bind {hosts[host].address}\nport 6379\nrequirepass {password}\nsave ""\nappendonly no\n'
        f"dir {workdir}\nprotected-mode yes\n",
    )
    binary = shutil.which("redis-server") or "redis-server"
    server = hosts.run(host, [binary, str(conf)], workdir / "redis.log")
    wait_port(hosts[host].address, 6379, 15, server)
    return server


def start_rabbitmq(hosts: Hosts, host: str, user: str, password: str, workdir: Path) -> Proc:
    """A RabbitMQ node of the test's own on ``host`` (listening on its address only)."""
    if not RABBITMQ_SERVER.exists():
        raise HostsUnavailable(f"{RABBITMQ_SERVER} is not installed")
    conf = _private_file(
        workdir / "rabbitmq.conf",
        f"listeners.tcp.1 = {hosts[host].address}:5672\nloopback_users = none\n"
        f"default_user = {user}\ndefault_pass = {password}\n",
    )
    env = {
        "HOME": str(workdir),  # the Erlang cookie of this node, not the machine's RabbitMQ's
        "RABBITMQ_NODENAME": f"{hosts.tag}@localhost",
        "RABBITMQ_CONFIG_FILE": str(conf),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "plugins"),
    }
    server = hosts.run(host, [str(RABBITMQ_SERVER)], workdir / "rabbitmq.out", env)
    wait_port(hosts[host].address, 5672, 60, server)
    return server
