"""Run a script and then `WAIT numreplicas timeout` on the same connection (WAIT counts the
replicas that acknowledged this connection's writes, so it cannot go through a pool that
may hand out another connection): a pipeline of EVALSHA and WAIT on the primary.

On Redis Cluster the pipeline goes to the primary holding the key's slot, through a plain
client to that node, so redirects are followed here: MOVED refreshes the slot map and tries
again, ASK sends ASKING first to the importing node, TRYAGAIN waits a moment. Any other
error is raised for the store's fail policy.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster
from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError

ATTEMPTS = 4  # redirects followed before giving up (a slot moves once per reshard step)
TRYAGAIN_S = 0.02


@functools.lru_cache(maxsize=64)  # our few Lua scripts: hashing one per call cost ~1% of a request
def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def acked(client: Any, script: str, keys: list[str], args: list[Any], replicas: int,
          timeout_ms: int) -> tuple[Any, int]:  # fmt: skip
    """The script's reply and how many replicas acknowledged its writes."""
    asking = False
    node: Any = client
    for _ in range(ATTEMPTS):
        if isinstance(client, redis.cluster.RedisCluster) and not asking:
            cluster: Any = client  # redis-py leaves its cluster methods untyped
            node = cluster.get_redis_connection(cluster.get_node_from_key(keys[0]))
        pipe = node.pipeline(transaction=False)
        if asking:
            pipe.execute_command("ASKING")
        pipe.evalsha(sha1(script), len(keys), *keys, *args)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        replies = pipe.execute(raise_on_error=False)[1 if asking else 0 :]
        reply, count = replies
        asking = False
        if isinstance(reply, NoScriptError):
            node.script_load(script)
        elif isinstance(reply, AskError) and not isinstance(reply, MovedError):
            node = client.get_redis_connection(client.get_node(reply.host, reply.port))
            asking = True
        elif isinstance(reply, MovedError):
            client.nodes_manager.initialize()
        elif isinstance(reply, TryAgainError):
            time.sleep(TRYAGAIN_S)
        elif isinstance(reply, Exception):
            raise reply
        else:
            return reply, _count(count)
    raise redis.ConnectionError("the store's slot kept moving: redirects not settled")


async def aacked(client: Any, script: str, keys: list[str], args: list[Any], replicas: int,
                 timeout_ms: int, nodes: dict[str, aioredis.Redis]) -> tuple[Any, int]:  # fmt: skip
    """`acked` on asyncio; `nodes` caches plain clients to cluster nodes (per event loop)."""
    asking = False
    node: Any = client
    for _ in range(ATTEMPTS):
        if isinstance(client, aiocluster.RedisCluster) and not asking:
            await client.initialize()
            owner = client.get_node_from_key(keys[0])
            if owner is None:
                raise redis.ConnectionError("no primary holds the store's slot")
            node = _node(nodes, owner)
        pipe = node.pipeline(transaction=False)
        if asking:
            pipe.execute_command("ASKING")
        pipe.evalsha(sha1(script), len(keys), *keys, *args)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        replies = (await pipe.execute(raise_on_error=False))[1 if asking else 0 :]
        reply, count = replies
        asking = False
        if isinstance(reply, NoScriptError):
            await node.script_load(script)
        elif isinstance(reply, AskError) and not isinstance(reply, MovedError):
            known = client.get_node(reply.host, reply.port)
            node = _node(nodes, known or aiocluster.ClusterNode(reply.host, reply.port))
            asking = True
        elif isinstance(reply, MovedError):
            await client.nodes_manager.initialize()
        elif isinstance(reply, TryAgainError):
            await asyncio.sleep(TRYAGAIN_S)
        elif isinstance(reply, Exception):
            raise reply
        else:
            return reply, _count(count)
    raise redis.ConnectionError("the store's slot kept moving: redirects not settled")


def _node(nodes: dict[str, aioredis.Redis], node: aiocluster.ClusterNode) -> aioredis.Redis:
    found = nodes.get(node.name)
    if found is None:
        pool = aioredis.ConnectionPool(connection_class=node.connection_class,
                                       **{**node.connection_kwargs, "host": node.host,
                                          "port": node.port})  # fmt: skip
        found = aioredis.Redis.from_pool(pool)
        nodes[node.name] = found
    return found


def _count(reply: Any) -> int:
    if isinstance(reply, Exception):
        raise reply
    return int(reply)
