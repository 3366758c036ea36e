"""Where the limits store's Redis is and how to reach it: the URL forms users write for the
topologies they run, parsed into a small frozen description, and the redis-py clients (sync
and asyncio) built from it.

- `redis://[user:pass@]host:port/db`, `rediss://…` (TLS), `unix:///path?db=0`: one server
  (or a managed service's single endpoint, which fails over behind one DNS name).
- `redis+cluster://[user:pass@]h1:7000,h2:7001/?…`, `rediss+cluster://…`: Redis Cluster
  from seed nodes; the client learns the slot map and follows MOVED/ASK.
- `redis+sentinel://[user:pass@]s1:26379,s2:26379/service[/db]?…`, `rediss+sentinel://…`:
  the primary that Sentinel names for `service`; credentials are the data nodes';
  `sentinel_username`/`sentinel_password` in the query authenticate to the sentinels.
Query options are redis-py's (`socket_timeout`, `ssl_cert_reqs`, `ssl_ca_certs`, …).

Passwords never leave this module in text: `safe_url` masks the userinfo password and
password query values, and a Topology's repr is its safe URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import Connection, SSLConnection
from redis.retry import Retry

Kind = Literal["single", "cluster", "sentinel"]
# redis-py leaves these untyped
_parse_url: Callable[[str], dict[str, Any]] = redis.connection.parse_url
_SyncSentinel: Any = redis.sentinel.Sentinel
_AsyncSentinel: Any = aiosentinel.Sentinel
_SyncNode: Any = redis.cluster.ClusterNode
SINGLE_SCHEMES = ("redis", "rediss", "unix")
# a password query value, and all after it: an unencoded `&` or `#` may be part of it
# a `*password=` value and all after it; so too after a name with an escape in it, which
# redis-py decodes (`pass%77ord=` is a password: the re-check saw one shown)
SECRET_QUERY = re.compile(r"(?i)((?:^|[?&])[a-z_]*password=|[?&][^=&#?]*%[^=&#?]*=).*")


def _masked_query(found: re.Match[str]) -> str:
    """`password=***`; an escaped name is hidden too (it may be part of the password)."""
    name = found[1]
    return name + "***" if "%" not in name else name[:1] + "***"


SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")  # RFC 3986 3.1


def safe_url(url: str) -> str:
    """The URL without its passwords, for messages: a `*password=` query value and what
    follows it, and everything before the last `@` (a password with an unencoded `/`, `?`
    or `#` hides where the hosts begin: masking more is the safe side)."""
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        # not a URL of any form, but may still hold one's password (`redis:pw@h`, or
        # `redis:/user:J://@h`, whose "scheme" is up to the password's own `://`)
        scheme, sep, rest = "", "", url
    found = SECRET_QUERY.search(rest)
    head, tail = (rest[: found.start()], _masked_query(found)) if found else (rest, "")
    if found and "@" in found[0]:  # the userinfo may end in the masked part: hide it all
        return f"{scheme}{sep}***{tail}"
    _, at, hosts = head.rpartition("@")
    return f"{scheme}{sep}{'***@' if at else ''}{hosts}{tail}"


class _Unreadable(ValueError):
    """Our own words on why a URL is not one: they never quote the URL (its password could
    be anywhere in a URL that does not split as meant)."""


@dataclass(frozen=True, slots=True)
class Topology:
    """A parsed store URL. `options` are redis-py connection keyword arguments (credentials
    included, so never printed); `nodes` are cluster seeds or sentinels."""

    kind: Kind
    url: str = field(repr=False)
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None  # the Sentinel service (master group) name
    db: int = 0
    options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    sentinel_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Topology({self.kind}, {safe_url(self.url)})"

    @property
    def safe(self) -> str:
        return safe_url(self.url)


def parse(url: str) -> Topology:
    """The topology a store URL names; ValueError (without the password) if it is none."""
    if not isinstance(url, str):
        raise ValueError("the limits store URL must be a string")
    scheme = url.partition("://")[0].lower()
    try:
        if scheme in SINGLE_SCHEMES:
            if scheme != "unix" and not _DB_PATH.fullmatch(urlsplit(url).path):
                raise _Unreadable("its path is a database number, as /0 (redis-py read "
                                  "/1O or /abc as database 0, and /1/2 as 12)")  # fmt: skip
            return Topology("single", url, options=_taken(_parse_url(url)))
        base, _, form = scheme.partition("+")
        if base in ("redis", "rediss") and form in ("cluster", "sentinel"):
            return _parse_multi(url, base, form)
    except _Unreadable as exc:
        raise ValueError(f"cannot read the limits store URL {safe_url(url)}: {exc}") from None
    except ValueError:  # redis-py's or urllib's words may quote part of the password
        raise ValueError(
            f"cannot read the limits store URL {safe_url(url)}: it is not a URL of its form "
            "(characters such as / ? # @ : in a user name or password must be percent-encoded)"
        ) from None
    raise ValueError(
        f"the limits store URL {safe_url(url)} must start with redis://, rediss://, unix://, "
        "redis+cluster://, rediss+cluster://, redis+sentinel:// or rediss+sentinel://"
    )


_DB_PATH = re.compile(r"(?:/(?:[0-9]{1,5})?)?")


def _parse_multi(url: str, base: str, form: str) -> Topology:
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    nodes = tuple(_host_port(h, 26379 if form == "sentinel" else 6379)
                  for h in hosts.split(","))  # fmt: skip
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    sentinel_options: dict[str, Any] = {k[len("sentinel_"):]: query.pop(k)
                                        for k in SENTINEL_OPTIONS if k in query}  # fmt: skip
    # redis-py reads credentials and options from a one-host URL of the same form
    one = f"{base}://{userinfo + '@' if userinfo else ''}{nodes[0][0]}:{nodes[0][1]}/"
    options = _parse_url(one + "?" + urlencode(query))
    for key in ("host", "port", "db"):
        options.pop(key, None)
    if base == "rediss":
        options.pop("connection_class", None)
        options["ssl"] = True
    _taken({**{k: v for k, v in options.items() if k != "ssl"},
            "connection_class": SSLConnection if base == "rediss" else Connection})  # fmt: skip
    path = [p for p in parts.path.split("/") if p]
    if form == "cluster":
        if path and path != ["0"]:
            raise _Unreadable("Redis Cluster has only database 0")
        return Topology("cluster", url, nodes, options=options)
    if not 1 <= len(path) <= 2:
        raise _Unreadable("a Sentinel URL names its service: redis+sentinel://host:port/service")
    db = int(path[1]) if len(path) == 2 else int(query.get("db", 0))
    options.pop("db", None)
    if base == "rediss":
        sentinel_options["ssl"] = True
    return Topology("sentinel", url, nodes, path[0], db, options, sentinel_options)


def _taken(options: dict[str, Any]) -> dict[str, Any]:
    """`options` if the scheme's connection takes them all: `ssl_*` on a `redis://` URL
    was a TypeError at the first connection, an internal error to the gateway's user."""
    kind = options.get("connection_class", Connection)
    try:
        kind(**{k: v for k, v in options.items() if k != "connection_class"})
    except TypeError:  # never named: a password with an unencoded `?` splits into options
        raise _Unreadable(
            "it sets an option its scheme's connections do not take (the `ssl_*` options "
            "need rediss://)"
        ) from None
    return options


def _host_port(text: str, default: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port`."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise _Unreadable("a host is empty")
    if not (port or str(default)).isdigit() or not 0 < int(port or default) < 65536:
        raise _Unreadable("a port is not a number from 1 to 65535")
    return host, int(port or default)


# -- clients --------------------------------------------------------------------------------
# A store's commands are short: the socket timeout bounds each, and the client library's own
# retries are few and fast (the store has its fail policy for the rest). redis-py's default
# for a client it builds (a sentinel's, a cluster's) is 10 retries backing off up to 1 s:
# seconds per call while a sentinel is down.
def _retry(timeout: float) -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=min(timeout, 0.1)), 2)


def _aretry(timeout: float) -> AsyncRetry:
    return AsyncRetry(ExponentialWithJitterBackoff(base=0.01, cap=min(timeout, 0.1)), 2)


def _socket(timeout: float) -> dict[str, Any]:
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


Client = redis.Redis | redis.cluster.RedisCluster
AsyncClient = aioredis.Redis | aiocluster.RedisCluster


# `max_connections` bounds the one-server pool (callers beyond it wait); cluster and
# Sentinel pools are redis-py's own, which grow with concurrency instead of refusing.
def sync_client(topology: Topology, timeout: float, max_connections: int) -> Client:
    """The client for this topology."""
    if topology.kind == "single":
        # A blocking pool: callers beyond `max_connections` wait (up to `timeout`) for a
        # connection instead of failing.
        pool = redis.BlockingConnectionPool.from_url(
            topology.url, **_socket(timeout), max_connections=max_connections,
            timeout=timeout, health_check_interval=30,
        )  # fmt: skip
        return redis.Redis(connection_pool=pool)
    if topology.kind == "cluster":  # connects to a seed at once (the store builds it lazily)
        return redis.cluster.RedisCluster(
            startup_nodes=[_SyncNode(h, p) for h, p in topology.nodes],
            retry=_retry(timeout), **{**topology.options, **_socket(timeout)},
        )  # fmt: skip
    sentinel = _SyncSentinel(
        topology.nodes,
        sentinel_kwargs={**_socket(timeout), "retry": _retry(timeout),
                         **topology.sentinel_options},
        **_socket(timeout),
    )  # fmt: skip
    client: Client = sentinel.master_for(
        topology.service, db=topology.db, **{**topology.options, **_socket(timeout)}
    )
    return client


def async_client(topology: Topology, timeout: float, max_connections: int) -> AsyncClient:
    """The asyncio client for this topology (one per event loop: pools cannot cross loops)."""
    if topology.kind == "single":
        pool = aioredis.BlockingConnectionPool.from_url(
            topology.url, **_socket(timeout), max_connections=max_connections, timeout=timeout
        )
        return aioredis.Redis(connection_pool=pool)
    if topology.kind == "cluster":
        return aiocluster.RedisCluster(
            startup_nodes=[aiocluster.ClusterNode(h, p) for h, p in topology.nodes],
            retry=_aretry(timeout), **{**topology.options, **_socket(timeout)},
        )  # fmt: skip
    sentinel = _AsyncSentinel(
        topology.nodes,
        sentinel_kwargs={**_socket(timeout), "retry": _aretry(timeout),
                         **topology.sentinel_options},
        **_socket(timeout),
    )  # fmt: skip
    aclient: AsyncClient = sentinel.master_for(
        topology.service, db=topology.db, **{**topology.options, **_socket(timeout)}
    )
    return aclient
