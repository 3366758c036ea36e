"""The Redis store's connection: its clients (sync, and one async per event loop), running
a script (loading it where the server lacks it), joining the namespace's generation at first
use (after checking the server's eviction policy), accepting a loss (`recover`) and reporting
one, following a failover (Sentinel primary checks, READONLY from a demoted server), and
closing. Apart from redis_store.py because none of it knows what a chain, an admission or a
settlement is: redis_settle.py and redis_store.py build on it (RedisStore's constructor sets
the attributes declared here).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel

from runtime.bundle.errors import StoreUnavailable
from runtime.bundle.loops import PerLoop
from runtime.limits.base import Store
from runtime.limits.lua import RECOVER, START
from runtime.limits.redis_acked import sha1
from runtime.limits.redis_codec import GENERATION_LOST, UNREACHABLE, _text
from runtime.limits.redis_pipe import Pipe
from runtime.limits.redis_topology import AsyncClient, Client, Topology, safe_url
from runtime.limits.redis_topology import async_client as build_async
from runtime.limits.redis_topology import sync_client as build_sync

if TYPE_CHECKING:
    from runtime.limits.redis_lease import Leases

PRIMARY_CHECK_S = 0.25  # Sentinel: how often the store asks which server is the primary
log = logging.getLogger("runtime.limits.redis")


class RedisConnection(Store):
    """Clients, scripts, the generation and failovers of one store (see redis_store.py)."""

    # set by RedisStore.__init__
    topology: Topology | None
    url: str
    namespace: str
    fail_open: bool
    on_loss: Callable[[StoreUnavailable], None] | None
    eviction_policy: str
    losses: int
    generation: str | None
    budget_leases: Leases | None
    _reported: set[str]
    _marker: str
    _registry: str
    _timeout: float
    _max_connections: int
    _client: Client | None
    _client_lock: threading.Lock
    _given_async: AsyncClient | None
    _aclients: PerLoop[AsyncClient]
    _apipes: PerLoop[Pipe]
    _pipe_address: tuple[str, int, int, str | None, str | None] | None
    _next_primary_check: float

    @property
    def client(self) -> Client:
        """The sync client, built at first use (a cluster client connects when built)."""
        found = self._client
        if found is None:
            if self.topology is None:
                raise TypeError("this store was given only an async_client: use its async "
                                "methods (aadmit, asettle, astart)")  # fmt: skip
            with self._client_lock:
                if self._client is None:
                    self._client = build_sync(self.topology, self._timeout, self._max_connections)
                found = self._client
        return found

    def _eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA, loading the script after a SCRIPT FLUSH or on a node that lacks it."""
        client: Any = self.client
        try:
            return client.evalsha(sha1(script), len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            client.script_load(script)
            return client.evalsha(sha1(script), len(keys), *keys, *args)

    async def _aeval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        pipe = self._apipe()
        if pipe is not None:  # the hot path: one pipelined connection (redis_pipe.py)
            try:
                return await pipe.call("EVALSHA", sha1(script), len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                await pipe.call("SCRIPT", "LOAD", script)
                return await pipe.call("EVALSHA", sha1(script), len(keys), *keys, *args)
        client: Any = self.async_client()
        try:
            return await client.evalsha(sha1(script), len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await client.script_load(script)
            return await client.evalsha(sha1(script), len(keys), *keys, *args)

    def _apipe(self) -> Pipe | None:
        """The running loop's pipe to a plain `redis://` server, or None (redis-py's client)."""
        if self._pipe_address is None:
            return None
        return self._apipes.get(asyncio.get_running_loop(), Pipe, self._pipe_address, self._timeout)

    # -- start: the server's eviction policy, the namespace's generation ------------------
    def start(self) -> str:
        """Check the server and join the generation of counters; runs at first use.
        StoreUnavailable if Redis cannot be reached or may evict counters."""
        try:
            return self._start()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    async def astart(self) -> str:
        try:
            return await self._astart()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    def _start(self) -> str:
        self._judge_policy(_read_policy(self.client, self._marker))
        self._judge_node(_cluster_info(self.client))
        return self._joined(self._eval(START, [self._marker], [_new_generation()]))

    async def _astart(self) -> str:
        client = self.async_client()
        self._judge_policy(await _aread_policy(client, self._marker))
        self._judge_node(await _acluster_info(client))
        return self._joined(await self._aeval(START, [self._marker], [_new_generation()]))

    def _judge_node(self, info: Any) -> None:
        """A plain URL at a node of a Redis Cluster served while the namespace's slot was
        that node's, then failed with a bare MOVED reply (a review): refused at start."""
        if isinstance(info, dict) and str(info.get("cluster_enabled", "0")) == "1":
            raise StoreUnavailable(
                f"the limits store at {safe_url(self.url)} is a node of a Redis Cluster: name "
                "the cluster, redis+cluster://host:port[,host:port...] (a plain URL reaches "
                "only the slots that node holds)"
            )

    def _unavailable(self, exc: BaseException, what: str = "is unavailable") -> StoreUnavailable:
        return StoreUnavailable(f"the limits store at {safe_url(self.url)} {what}: {_said(exc)}")

    def _judge_policy(self, policy: str | None) -> None:
        if policy == "noeviction":
            return
        if policy is None:
            problem = ("cannot tell whether it may evict counters: CONFIG GET and INFO are "
                       "refused; make sure its maxmemory-policy is noeviction")  # fmt: skip
        else:
            problem = (f"may evict counters: its maxmemory-policy is {policy} (budget keys "
                       "carry TTLs, so volatile-* policies evict them too); set it to "
                       "noeviction")  # fmt: skip
        message = f"the limits store at {safe_url(self.url)} {problem}"
        if self.eviction_policy == "refuse":
            raise StoreUnavailable(f"{message}, or pass eviction_policy='warn'")
        log.warning("%s (eviction_policy='warn')", message)

    def _joined(self, reply: list[Any]) -> str:
        created, generation = int(reply[0]), _text(reply[1])
        if created:
            log.warning("limits store namespace %r: started a new generation of counters "
                        "(a new namespace, or its counters were lost)", self.namespace)  # fmt: skip
        self.generation = generation
        return generation

    @property
    def counters_lost(self) -> bool:
        """Lost counters were found and not yet accepted: a fail-closed store refuses the
        admissions that need them (StoreUnavailable) until `recover`, or a restart."""
        return bool(self._reported) and not self.fail_open

    def _check_generation(self, marker: bytes | str | None) -> None:
        """Refuse to report counters a fail-closed store has lost (the marker read beside
        them is gone or replaced): read as they are, a FLUSHALL showed every budget whole,
        while every admission was refused (a review)."""
        if (
            self.generation is not None
            and not self.fail_open
            and (marker is None or _text(marker) != self.generation)
        ):
            raise self._lost(GENERATION_LOST)

    async def acheck_generation(self) -> None:
        """The same check alone (for /readyz: a loss is seen before an admission finds it)."""
        try:
            marker = await self.async_client().get(self._marker)
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        self._check_generation(marker)

    def recover(self) -> str:
        """Accept lost counters: adopt the namespace's current generation (or start one)
        and let vanished keys count afresh. Fail-closed stores refuse admissions until then."""
        try:
            return self._recover()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    async def arecover(self) -> str:
        try:
            return await self._arecover()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None

    def _recover(self) -> str:
        reply = self._eval(RECOVER, [self._marker, self._registry], [_new_generation()])
        return self._recovered(reply)

    async def _arecover(self) -> str:
        reply = await self._aeval(RECOVER, [self._marker, self._registry], [_new_generation()])
        return self._recovered(reply)

    def _recovered(self, reply: list[Any]) -> str:
        self.generation = _text(reply[0])
        self._reported.clear()
        log.warning("limits store namespace %r: lost counters accepted; %d vanished keys "
                    "count afresh", self.namespace, int(reply[1]))  # fmt: skip
        return self.generation

    def _lost(self, what: str) -> StoreUnavailable:
        """Report a loss once (on_loss, log, `losses`) and return the error that says it."""
        policy = ("admitting and counting afresh (fail-open)" if self.fail_open else
                  "refusing admissions that need them until store.recover() accepts the "
                  "loss")  # fmt: skip
        error = StoreUnavailable(
            f"the limits store at {safe_url(self.url)} lost counters of namespace "
            f"{self.namespace!r}: {what}; {policy}"
        )
        if what not in self._reported:
            if len(self._reported) < 10_000:
                self._reported.add(what)
            self.losses += 1
            log.error("%s", error)
            if self.on_loss is not None:
                self.on_loss(error)
        return error

    # -- topology -------------------------------------------------------------------------
    def _check_primary(self) -> None:
        """Sentinel: at most every PRIMARY_CHECK_S, ask which server is the primary; when it
        changed, the pool drops connections to the old one (which may still accept writes
        until Sentinel demotes it, and those writes would be lost)."""
        pool: Any = getattr(self._client, "connection_pool", None)
        if not isinstance(pool, redis.sentinel.SentinelConnectionPool) or not self._due():
            return
        before = pool.proxy.master_address  # the sync pool keeps it on its proxy
        with contextlib.suppress(*UNREACHABLE):  # the next command tells if it is reachable
            if pool.get_master_address() != before and before is not None:  # type: ignore[no-untyped-call]
                # redis-py drops only idle connections: one in use now would go back to the
                # pool still talking to the old primary, whose writes Sentinel will discard
                pool.disconnect(inuse_connections=True)

    async def _acheck_primary(self) -> None:
        client = self._loop_client(asyncio.get_running_loop())
        pool: Any = getattr(client, "connection_pool", None)
        if not isinstance(pool, aiosentinel.SentinelConnectionPool) or not self._due():
            return
        before = pool.master_address
        with contextlib.suppress(*UNREACHABLE):
            if await pool.get_master_address() != before and before is not None:  # type: ignore[no-untyped-call]
                await pool.disconnect(inuse_connections=True)  # as in _check_primary

    def _drop_demoted(self, exc: BaseException) -> None:
        """READONLY from one server: it was demoted (a managed service failed over behind
        its DNS name). Its connections stay open and would keep hitting the replica, so drop
        them all: the next ones resolve the name again and reach the new primary."""
        pool: Any = getattr(self._client, "connection_pool", None)
        if isinstance(exc, redis.exceptions.ReadOnlyError) and pool is not None:
            pool.disconnect(inuse_connections=True)

    async def _adrop_demoted(self, exc: BaseException) -> None:
        loop = asyncio.get_running_loop()
        pipe = self._apipes.find(loop)
        if isinstance(exc, redis.exceptions.ReadOnlyError) and pipe is not None:
            pipe.close()
        client = self._loop_client(loop)
        pool: Any = getattr(client, "connection_pool", None)
        if isinstance(exc, redis.exceptions.ReadOnlyError) and pool is not None:
            await pool.disconnect(inuse_connections=True)

    def _loop_client(self, loop: asyncio.AbstractEventLoop) -> AsyncClient | None:
        """The client `loop` already has, if any (a client object may not be truthy)."""
        found = self._aclients.find(loop)
        return found if found is not None else self._given_async

    def _due(self) -> bool:
        now = time.monotonic()
        if now < self._next_primary_check:
            return False
        self._next_primary_check = now + PRIMARY_CHECK_S
        return True

    # -- async plumbing -------------------------------------------------------------------
    def async_client(self) -> AsyncClient:
        """The client of the running event loop (an asyncio pool cannot cross loops)."""
        if self._given_async is not None:
            return self._given_async
        if self.topology is None:  # given only a sync client: no asyncio pool to build
            raise TypeError("this store was given only a sync client: pass async_client= "
                            "for the async methods")  # fmt: skip
        return self._aclients.get(asyncio.get_running_loop(), build_async, self.topology,
                                  self._timeout, self._max_connections)  # fmt: skip

    def ping(self) -> float:
        """One round trip, in seconds (for benchmarks and health checks)."""
        start = time.perf_counter()
        try:
            self.client.ping()
        except UNREACHABLE as exc:
            raise self._unavailable(exc) from None
        return time.perf_counter() - start

    async def aclose(self) -> None:
        """At shutdown in an event loop (the gateway): return leased budgets' holdings, and
        close this loop's pipe."""
        if self.budget_leases is not None:
            await self.budget_leases.aclose()
        pipe = self._apipes.pop(asyncio.get_running_loop())
        if pipe is not None:
            pipe.close()

    def _can_sync(self) -> bool:
        return self._client is not None or self.topology is not None

    def close(self) -> None:
        if self.budget_leases is not None:
            self.budget_leases.close()  # returns what it holds
        if self._client is not None:
            self._client.close()


def _describe(client: Any) -> str:
    """A passwordless description of a client passed in, for messages."""
    if isinstance(client, redis.cluster.RedisCluster) or type(client).__name__ == "RedisCluster":
        nodes = ",".join(n.name for n in client.get_nodes()[:3]) if client.get_nodes() else ""
        return f"redis+cluster://{nodes}"
    pool = getattr(client, "connection_pool", None)
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"redis+sentinel://{service}"
    kwargs = getattr(pool, "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def _read_policy(client: Any, key: str) -> str | None:
    """The server's maxmemory-policy: CONFIG GET, else INFO memory (managed services often
    disable CONFIG), else None. On a cluster: the primary holding the store's slot."""
    target: dict[str, Any] = {}
    if isinstance(client, redis.cluster.RedisCluster):  # (its methods are untyped)
        target["target_nodes"] = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
    client.ping(**target)  # the connection's own refusals first (AUTH, SELECT of a db it lacks)
    try:
        return _policy_of(client.config_get("maxmemory-policy", **target), "maxmemory-policy")
    except redis.ResponseError:
        pass
    try:
        return _policy_of(client.info("memory", **target), "maxmemory_policy")
    except redis.ResponseError:
        return None


async def _aread_policy(client: Any, key: str) -> str | None:
    target: dict[str, Any] = {}
    if isinstance(client, aiocluster.RedisCluster):
        await client.initialize()
        target["target_nodes"] = client.get_node_from_key(key)
    await client.ping(**target)  # as in _read_policy
    try:
        reply = await client.config_get("maxmemory-policy", **target)
        return _policy_of(reply, "maxmemory-policy")
    except redis.ResponseError:
        pass
    try:
        return _policy_of(await client.info("memory", **target), "maxmemory_policy")
    except redis.ResponseError:
        return None


def _said(exc: BaseException) -> str:
    """What a client library's error says, in a line an operator reads: redis-py's "no
    master found" quoted each sentinel's repr (~1.5 KB per sentinel) with the error's name
    at its end (a review: a wrong sentinel_password read as a wall of reprs)."""
    if isinstance(exc, redis.sentinel.MasterNotFoundError | aiosentinel.MasterNotFoundError):
        errors = sorted(set(re.findall(r"\b(\w+Error)\b", str(exc))) - {"MasterNotFoundError"})
        why = f" (the sentinels answered: {', '.join(errors)})" if errors else ""
        return f"no sentinel names a primary for its service{why}"
    text = str(exc)
    return text if len(text) <= 300 else text[:299] + "…"


def _cluster_info(client: Any) -> Any:
    """INFO cluster of a one-server client (None for a cluster's, or where INFO is refused)."""
    if isinstance(client, redis.cluster.RedisCluster):
        return None
    try:
        return client.info("cluster")
    except redis.ResponseError:
        return None


async def _acluster_info(client: Any) -> Any:
    if isinstance(client, aiocluster.RedisCluster):
        return None
    try:
        return await client.info("cluster")
    except redis.ResponseError:
        return None


def _policy_of(reply: Any, name: str) -> str | None:
    if not isinstance(reply, dict):
        return None
    value = reply.get(name, reply.get(name.encode()))
    return _text(value) if isinstance(value, str | bytes) else None


def _new_generation() -> str:
    return f"{int(time.time())}-{secrets.token_hex(8)}"
