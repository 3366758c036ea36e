"""The law of endpoint references (runtime/bundle.endpoint_parts, gateway/endpoints.py):
whatever mix of literal and reference header values an entry has, splitting it at load and
reading the references back gives each header its literal, or its reference's value, and
no reference is ever taken for a value (or a value for a reference)."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from runtime.bundle.load import ModelInfo, Prices, endpoint_parts
from runtime.gateway.endpoints import _Reader

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,12}", fullmatch=True)
REFS = st.builds(lambda kind, name: f"{kind}:{name}", st.sampled_from(["env", "file"]),
                 st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True))  # fmt: skip
VALUES = st.one_of(st.text(max_size=20), REFS.map(lambda r: {"ref": r}))
URLS = st.one_of(st.none(), st.just("http://10.0.0.1:8000/v1"), REFS.map(lambda r: {"ref": r}))


def value_of(ref: str) -> str:
    """A distinct, valid base URL per reference (so it also passes as a base_url)."""
    return f"http://h{hashlib.sha256(ref.encode()).hexdigest()[:12]}.example/v1/"


@settings(derandomize=True, max_examples=200)
@given(st.dictionaries(NAMES, VALUES, max_size=6), URLS)
@example(headers={"A": "", "A0": {"ref": "file:A0_"}}, base={"ref": "file:A0_"})  # both roles
def test_reading_back_gives_every_literal_and_every_reference_value(
    headers: dict[str, Any], base: Any
) -> None:
    entry: dict[str, Any] = {"base_url": base, "headers": headers}
    literal_base, literal, refs = endpoint_parts(entry)
    expected = {k: value_of(v["ref"]) if isinstance(v, dict) else v for k, v in headers.items()}
    assert set(literal) | {k.removeprefix("header:") for k in refs if k != "base_url"} == set(
        headers
    )
    assert all(not isinstance(v, dict) for v in literal.values())
    info = ModelInfo("m", "chat", None, None, Prices(), {}, literal_base, literal, refs)
    filled = _Reader(value_of).fill(info)
    assert dict(filled.headers) == expected
    if isinstance(base, dict):
        assert literal_base is None and filled.base_url == value_of(base["ref"]).rstrip("/")
    else:
        assert filled.base_url == base
    assert filled.refs == refs  # kept: a reload reads them again
