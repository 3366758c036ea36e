"""Real Redis topologies for tests, on free loopback ports, built from redis-server processes
(tests/redis_server.py): a Redis Cluster of N primaries, with the store's slot movable key by
key (CLUSTER SETSLOT … MIGRATING/IMPORTING, MIGRATE, SETSLOT … NODE), and a primary with a
replica watched by three sentinels (started as `redis-server sentinel.conf --sentinel`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from tests.redis_server import RedisServer, free_port

SLOTS = 16384
CLUSTER_ARGS = ("--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
                "--cluster-require-full-coverage", "no")  # fmt: skip


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
            if found:
                return found
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def slot_of(namespace: str) -> int:
    return int(key_slot(("{" + namespace + "}").encode()))


class Cluster:
    """N primaries sharing the 16384 slots evenly, each with `replicas` replicas."""

    def __init__(self, binary: str, workdir: Path, primaries: int = 3, replicas: int = 0) -> None:
        def node(name: str) -> RedisServer:
            home = workdir / name
            home.mkdir()
            server = RedisServer(binary, home, CLUSTER_ARGS)
            server.port = _bus_safe_port()
            server.url = f"redis://127.0.0.1:{server.port}/0"
            return server

        self.servers = [node(f"node{i}") for i in range(primaries)]  # the primaries
        self.replicas = {s.port: [node(f"node{i}r{j}") for j in range(replicas)]
                         for i, s in enumerate(self.servers)}  # fmt: skip

    def start(self) -> Cluster:
        replicas = [r for rs in self.replicas.values() for r in rs]
        for server in (*self.servers, *replicas):
            server.start()
        clients = [s.client() for s in self.servers]
        step = SLOTS // len(clients)
        for i, client in enumerate(clients):
            last = SLOTS - 1 if i == len(clients) - 1 else (i + 1) * step - 1
            client.execute_command("CLUSTER ADDSLOTSRANGE", i * step, last)
        for server in (*self.servers[1:], *replicas):
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", server.port)
        everyone = len(self.servers) + len(replicas)
        for server in (*self.servers, *replicas):
            with server.client() as client:
                wait_for(lambda c=client: _cluster_ok(c, everyone), "the cluster to form")
        for primary in self.servers:
            for replica in self.replicas[primary.port]:
                with replica.client() as client:
                    client.cluster("REPLICATE", self.node_id(primary))
        for primary in self.servers:
            want = len(self.replicas[primary.port])
            wait_for(lambda p=primary, n=want: _replicas(p) == n, "the replicas to sync")
        for client in clients:
            client.close()
        return self

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def node_id(self, server: RedisServer) -> str:
        with server.client() as client:
            return str(client.cluster("MYID").decode())

    def owner(self, slot: int) -> RedisServer:
        with self.servers[0].client() as client:
            for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    port = int(primary[1])
                    return next(s for s in self.servers if s.port == port)
        raise LookupError(slot)

    def namespace_on(self, server: RedisServer, prefix: str = "ns") -> str:
        """A namespace whose hash tag's slot is held by `server`."""
        for n in range(100_000):
            if self.owner(slot_of(f"{prefix}-{n}")) is server:
                return f"{prefix}-{n}"
        raise LookupError(server.port)

    def migrate(self, slot: int, target: RedisServer, batch: int = 10,
                pause: float = 0.0) -> int:  # fmt: skip
        """Move a slot's keys to `target`, `batch` keys per MIGRATE with a pause between
        (so clients meet ASK and TRYAGAIN), then give it the slot. Returns keys moved."""
        source = self.owner(slot)
        src, dst = source.client(), target.client()
        src_id, dst_id = self.node_id(source), self.node_id(target)
        dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, batch):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause)
        for server in self.servers:
            with server.client() as client:
                client.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        src.close()
        dst.close()
        return moved

    def stop(self) -> None:
        for server in (*self.servers, *(r for rs in self.replicas.values() for r in rs)):
            server.kill()


def _bus_safe_port() -> int:
    """A free port whose cluster bus port (+10000) is a free port too."""
    while True:
        port = free_port()
        if port + 10_000 < 65_536:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 10_000))
                return port
            except OSError:
                continue


def _cluster_ok(client: redis.Redis, nodes: int) -> bool:
    fields = client.cluster("INFO")  # parsed by redis-py
    return fields.get("cluster_state") == "ok" and int(fields["cluster_known_nodes"]) == nodes


SERVICE = "books"


class SentinelGroup:
    """A primary, one replica, three sentinels (quorum 2) watching service SERVICE."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        homes = [workdir / name for name in ("a", "b")]
        for home in homes:
            home.mkdir()
        self.primary = RedisServer(binary, homes[0])
        self.replica = RedisServer(binary, homes[1])
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[Any] = []

    def start(self) -> SentinelGroup:
        self.primary.start()
        self.replica.args = ("--replicaof", "127.0.0.1", str(self.primary.port))
        self.replica.start()
        wait_for(lambda: _replicas(self.primary) == 1, "the replica to sync")
        import subprocess

        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 500\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(subprocess.Popen(
                [self.binary, str(conf), "--sentinel", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        for port in self.sentinel_ports:
            wait_for(lambda p=port: _sentinel_ready(p), "the sentinels to see each other")
        return self

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def master_port(self) -> int:
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=0.5) as s:
            _, port = s.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)
            return int(port)

    def failover(self) -> RedisServer:
        """SENTINEL FAILOVER; returns once the replica is the primary every sentinel names
        and writes are accepted there."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=2) as s:
            s.execute_command("SENTINEL FAILOVER", SERVICE)
        return self.await_switch()

    def await_switch(self, timeout: float = 20.0) -> RedisServer:
        old = self.primary
        new = self.replica
        wait_for(lambda: all(_names(p) == new.port for p in self.sentinel_ports)
                 and _role(new) == "master", "the failover", timeout)  # fmt: skip
        self.primary, self.replica = new, old
        return new

    def healthy(self) -> SentinelGroup:
        """Both servers up, the replica online, every sentinel naming the primary: what each
        test starts from (a killed primary comes back as the new primary's replica)."""
        for server in (self.primary, self.replica):
            if server.proc is None:
                server.args = ("--replicaof", "127.0.0.1", str(self.master_port()))
                server.start()
        port = self.master_port()
        if self.primary.port != port:
            self.primary, self.replica = self.replica, self.primary
        self.await_replica()
        wait_for(lambda: all(_names(p) == self.primary.port for p in self.sentinel_ports),
                 "the sentinels to agree")  # fmt: skip
        return self

    def await_replica(self) -> None:
        """The other server replicating the primary. Sentinel demotes a replaced primary
        that lives on only after about 8 s (4 publish periods); do it now, as it would."""
        if _role(self.replica) == "master":
            with self.replica.client() as client:
                client.replicaof("127.0.0.1", str(self.primary.port))
        wait_for(lambda: _replicas(self.primary) == 1, "the replica to sync")

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.kill()
            proc.wait()
        self.primary.kill()
        self.replica.kill()


def _replicas(server: RedisServer) -> int:
    """Replicas online (done with their first sync, so they acknowledge writes)."""
    with server.client() as client:
        info = client.info("replication")
        if info.get("role") != "master":
            return -1
        return sum(1 for k, v in info.items()
                   if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online")  # fmt: skip


def _role(server: RedisServer) -> str:
    with redis.Redis(port=server.port, socket_timeout=0.5) as client:
        return str(client.info("replication")["role"])


def _names(sentinel_port: int) -> int:
    with redis.Redis(port=sentinel_port, socket_timeout=0.5) as s:
        return int(s.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", SERVICE)[1])


def _sentinel_ready(port: int) -> bool:
    with redis.Redis(port=port, socket_timeout=0.5) as s:
        fields = s.sentinel_master(SERVICE)
        return int(fields["num-other-sentinels"]) == 2 and int(fields["num-slaves"]) == 1
