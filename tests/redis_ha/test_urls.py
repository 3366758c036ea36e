"""Store URLs: every form parses to its topology, and no password ever shows — not in a
repr, a parse error, or the StoreUnavailable of an unreachable store (sync and asyncio)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runtime import StoreUnavailable
from runtime.limits.redis_store import RedisStore
from runtime.limits.redis_topology import parse, safe_url
from tests.redis_server import free_port

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "kind", "nodes", "service", "db"),
    [
        (f"redis://:{SECRET}@h:6380/2", "single", (), None, 0),
        (f"rediss://u:{SECRET}@h/0?ssl_cert_reqs=none", "single", (), None, 0),
        (f"unix:///run/r.sock?db=1&password={SECRET}", "single", (), None, 0),
        (f"redis+cluster://u:{SECRET}@h1:7000,h2:7001/", "cluster", (("h1", 7000), ("h2", 7001)), None, 0),
        ("rediss+cluster://h1,[::1]:7002", "cluster", (("h1", 6379), ("::1", 7002)), None, 0),
        (f"redis+sentinel://:{SECRET}@s1:26379,s2/books/3?sentinel_password={SECRET}", "sentinel",
         (("s1", 26379), ("s2", 26379)), "books", 3),
    ],
)  # fmt: skip
def test_url_forms(url: str, kind: str, nodes: tuple, service: str | None, db: int) -> None:  # type: ignore[type-arg]
    topology = parse(url)
    assert (topology.kind, topology.nodes, topology.service, topology.db) == (
        kind,
        nodes,
        service,
        db,
    )
    assert SECRET not in repr(topology) and SECRET not in safe_url(url)


def test_tls_forms_ask_for_tls() -> None:
    assert parse("rediss+cluster://h:1").options["ssl"] is True
    sentinel = parse("rediss+sentinel://s:1/m")
    assert sentinel.options["ssl"] is True and sentinel.sentinel_options["ssl"] is True


@pytest.mark.parametrize(
    "url",
    [f"http://:{SECRET}@h", f"redis+cluster://:{SECRET}@h:99999", f"redis+sentinel://:{SECRET}@h",
     f"redis+cluster://:{SECRET}@h/3",
     f"redis://:{SECRET}@h/0?ssl_cert_reqs=none",  # an option of rediss:// (was a TypeError)
     # an option no connection takes, on the forms with several hosts: a TypeError at start
     # (Sentinel; Cluster's async client), or ignored (Cluster's sync client): a review
     f"redis+sentinel://:{SECRET}@s:1/books?sentinel_password={SECRET}&bogus=1",
     f"redis+cluster://:{SECRET}@h:1,h:2?bogus=1",
     f"rediss+cluster://:{SECRET}@h:1?no_such_option=1",
     # a database that is no number was database 0 (and /1/2 was 12): a review
     f"redis://:{SECRET}@h:6379/1O", f"redis://:{SECRET}@h:6379/abc",
     f"redis://:{SECRET}@h:6379/1/2"],
)  # fmt: skip
def test_bad_urls_are_value_errors_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        RedisStore(url)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "form",
    ["redis://:{pw}@127.0.0.1:{port}/0", "redis+cluster://:{pw}@127.0.0.1:{port}",
     "redis+sentinel://:{pw}@127.0.0.1:{port}/books?sentinel_password={pw}",
     "redis+sentinel://:{pw}@127.0.0.1:{port},127.0.0.1:{port}/books"],
)  # fmt: skip
def test_an_unreachable_store_is_typed_and_says_no_password(form: str) -> None:
    store = RedisStore(form.format(pw=SECRET, port=free_port()), timeout=0.2)
    for call in (store.start, store.ping, lambda: store.spent("b", "w"), store.recover):
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert SECRET not in str(caught.value)
    with pytest.raises(StoreUnavailable) as caught:
        asyncio.run(store.astart())
    assert SECRET not in str(caught.value)
    # a line an operator reads: redis-py's "no master found" quoted each sentinel's repr
    # (2,139 characters for two sentinels; a review)
    assert len(str(caught.value)) < 400, str(caught.value)
    if "sentinel" in form:
        assert "no sentinel names a primary" in str(caught.value)
        assert "ConnectionError" in str(caught.value)


# a password as operators paste them (base64 and generated ones hold / + = and worse), in
# letters no message or host here has: none of them may show, however the URL splits
PASSWORDS = st.text(alphabet="QZXJ/?#@:+=&%", min_size=1, max_size=24).filter(
    lambda p: any(c in "QZXJ" for c in p)
)
FORMS = ["redis://{pw}@127.0.0.1:6379/0", "redis://default:{pw}@127.0.0.1:6379/0",
         "rediss://u:{pw}@h/0?ssl_cert_reqs=none", "unix:///run/r.sock?db=1&password={pw}",
         "redis://h:6379/0?password={pw}&db=2", "redis+cluster://u:{pw}@h1:7000,h2:7001/",
         "redis+sentinel://:{pw}@s1:26379,s2/books/3?sentinel_password={pw}",
         "redis:/default:{pw}@127.0.0.1:6379/0", "redis:{pw}@h", "{pw}@h",
         "redis://127.0.0.1:6379/0?pass%77ord={pw}",  # a name redis-py decodes (a re-check)
         "redis+sentinel://s1:26379/books?sentinel%5Fpassword={pw}"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(password=PASSWORDS, form=st.sampled_from(FORMS))
@example(password="J://", form="redis:/default:{pw}@127.0.0.1:6379/0")  # the "scheme" took it
@example(password="?J=", form="redis://{pw}@127.0.0.1:6379/0")  # `J` read as an option's name
@example(password="J?%=", form="redis://{pw}@127.0.0.1:6379/0")  # an escaped name took the @
@example(password="?J%=", form="redis://{pw}@127.0.0.1:6379/0")
def test_no_password_shows_however_the_url_splits(password: str, form: str) -> None:
    url = form.format(pw=password)
    try:
        topology = parse(url)
    except ValueError as exc:
        shown = str(exc)
    else:
        shown = repr(topology) + topology.safe
    assert not any(c in shown for c in "QZXJ"), shown
