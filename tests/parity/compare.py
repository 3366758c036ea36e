"""Run one case through both gateways and compare what each did.

An observation is what a client and the upstream saw: the final status, the body's shape
(keys and value types, recursively), the `x-portkey-*` response headers, and the sequence of
upstream calls (target id, model, and the request's parameters other than `messages`).

`differences(portkey, ours)` lists every way two observations differ, except the deliberate
differences of DELIBERATE_HEADERS (each with its reason)."""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tests.gateway.harness import http
from tests.parity.corpus import (
    REQUEST_MODEL,
    WORKSPACE_KEY,
    Case,
    leaves,
    our_form,
    portkey_form,
    target_id,
)
from tests.parity.recorder import Call, Recorder

CHAT = "/v1/chat/completions"
REQUEST_TIMEOUT = 60.0
# Headers both gateways set whose values legitimately differ. Every other x-portkey-* header
# set by both must be equal; last-used-option-index and retry-attempt-count must also be
# set by both or by neither.
DELIBERATE_HEADERS: dict[str, str] = {
    "x-portkey-provider": "names the provider that answered: Portkey's raw form uses the "
    "service (`openai`), ours the catalog provider (`@t0`) — by construction of the two forms",
    "x-portkey-trace-id": "Portkey 1.15.2 without a request trace id answers an empty value; "
    "ours generates one (docs/gateway.md); neither is routing",
}
ALWAYS_COMPARED = ("x-portkey-last-used-option-index", "x-portkey-retry-attempt-count")
# Body keys of an upstream call that are not the routing's business.
CALL_IGNORED = ("messages",)
# Config fields whose effect on the upstream call differs on purpose: Portkey's open-source
# gateway 1.15.2 ignores `default_params` and `drop_params` (hosted-Portkey features: it
# forwards the request's parameters untouched), ours applies them as SPEC §5's merge rule
# says. For a leaf that has them, ours must send exactly SPEC's transform of what Portkey
# sent (`spec_params`), so the difference is checked, not skipped.
DELIBERATE_PARAMS = {
    "default_params": "fills what the request lacks (SPEC §5); Portkey 1.15.2 ignores it",
    "drop_params": "removes paths (SPEC §5); Portkey 1.15.2 ignores it",
}


@dataclass
class Observation:
    status: int
    headers: dict[str, str]  # x-portkey-* only
    body: Any
    calls: list[Call] = field(default_factory=list)
    seconds: float = 0.0

    def calls_brief(self) -> list[tuple[str, Any, str]]:
        return [(c.target, c.model, c.step) for c in self.calls]

    def key(self) -> str:
        """What `differences` compares, as one string (for sets of loadbalanced outcomes)."""
        return json.dumps(comparable(self), sort_keys=True)

    def report(self) -> dict[str, Any]:
        return {"status": self.status, "headers": self.headers, "body": self.body,
                "calls": [{"target": c.target, "model": c.model, "answered": c.step,
                           "params": call_params(c)} for c in self.calls],
                "seconds": round(self.seconds, 2)}  # fmt: skip


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively; lists element by element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def call_params(call: Call) -> dict[str, Any]:
    return {k: v for k, v in sorted(call.body.items()) if k not in CALL_IGNORED}


def drop_path(value: Any, path: str) -> None:
    """Remove `path` (`a.b`, `tools[0].function.strict`, `tools[*].function.name`) in place."""
    steps = re.findall(r"\[(\*|\d+)\]|\.?([^.\[\]]+)", path)
    keys: list[str | int] = []
    for index, key in steps:
        keys.append(key if key else ("*" if index == "*" else int(index)))

    def walk(node: Any, rest: list[str | int]) -> None:
        head, tail = rest[0], rest[1:]
        if head == "*" and isinstance(node, list):
            children: list[Any] = list(range(len(node)))
        elif (isinstance(head, int) and isinstance(node, list) and head < len(node)) or (
            isinstance(head, str) and isinstance(node, dict) and head in node
        ):
            children = [head]
        else:
            return
        for child in children:
            if tail:
                walk(node[child], tail)
            elif isinstance(node, dict):
                del node[child]
        if not tail and isinstance(node, list):
            for child in sorted(children, reverse=True):
                del node[child]

    if keys:
        walk(value, keys)


def spec_params(params: Mapping[str, Any], leaf: Mapping[str, Any]) -> dict[str, Any]:
    """What SPEC §5 sends for `leaf` given the request parameters `params` (as Portkey
    forwarded them): default_params fill what is missing, then drop_params remove paths."""
    out = copy.deepcopy(dict(params))
    for key, value in (leaf.get("default_params") or {}).items():
        out.setdefault(key, copy.deepcopy(value))
    for path in leaf.get("drop_params") or ():
        drop_path(out, path)
    return dict(sorted(out.items()))


def comparable(obs: Observation) -> dict[str, Any]:
    headers = {k: v for k, v in obs.headers.items() if k not in DELIBERATE_HEADERS}
    return {
        "status": obs.status,
        "body": shape(obs.body),
        "headers": headers,
        "calls": [[c.target, call_params(c)] for c in obs.calls],
    }


def differences(portkey: Observation, ours: Observation,
                config: Mapping[str, Any] | None = None) -> list[str]:  # fmt: skip
    """Every way `ours` differs from `portkey` (empty: the same). With the case's `config`,
    the parameters of a call to a leaf with DELIBERATE_PARAMS fields are expected to be
    `spec_params` of Portkey's."""
    by_target = {target_id(i): leaf for i, leaf in enumerate(leaves(config or {}))}
    found = []
    if portkey.status != ours.status:
        found.append(f"status: Portkey {portkey.status}, ours {ours.status}")
    pk_calls = [(c.target, c.model) for c in portkey.calls]
    our_calls = [(c.target, c.model) for c in ours.calls]
    if pk_calls != our_calls:
        found.append(f"upstream calls: Portkey {portkey.calls_brief()}, "
                     f"ours {ours.calls_brief()}")  # fmt: skip
    else:
        for i, (a, b) in enumerate(zip(portkey.calls, ours.calls, strict=True)):
            pa, pb = call_params(a), call_params(b)
            leaf = by_target.get(a.target, {})
            if any(key in leaf for key in DELIBERATE_PARAMS):
                pa = spec_params(pa, leaf)
            if pa != pb:
                found.append(f"upstream call {i} ({a.target}) parameters: Portkey {pa}, ours {pb}")
    if shape(portkey.body) != shape(ours.body):
        found.append(f"body shape: Portkey {shape(portkey.body)}, ours {shape(ours.body)}")
    names = set(portkey.headers) | set(ours.headers)
    for name in sorted(names):
        if name in DELIBERATE_HEADERS:
            continue
        pk_value, our_value = portkey.headers.get(name), ours.headers.get(name)
        if (pk_value is None or our_value is None) and name not in ALWAYS_COMPARED:
            continue
        if pk_value != our_value:
            found.append(f"header {name}: Portkey {pk_value!r}, ours {our_value!r}")
    return found


@dataclass
class Gateways:
    """The two gateways and the upstream they share."""

    recorder: Recorder
    portkey_origin: str
    our_origin: str

    def request(self, lane: str, case: Case) -> tuple[dict[str, str], dict[str, Any]]:
        body: dict[str, Any] = {"model": REQUEST_MODEL,
                                "messages": [{"role": "user", "content": "say hello"}],
                                **case.body}  # fmt: skip
        if lane == "portkey":
            config = portkey_form(case.config, lambda t: self.recorder.base_url("portkey", t))
            headers = {}
        else:
            config = our_form(case.config)
            headers = {"Authorization": f"Bearer {WORKSPACE_KEY}"}
        headers["x-portkey-config"] = json.dumps(config, separators=(",", ":"))
        if case.metadata is not None:
            headers["x-portkey-metadata"] = json.dumps(case.metadata)
        return headers, body

    def observe(self, lane: str, case: Case) -> Observation:
        origin = self.portkey_origin if lane == "portkey" else self.our_origin
        headers, body = self.request(lane, case)
        started = time.monotonic()
        status, got, raw = http("POST", origin + CHAT, body, headers, timeout=REQUEST_TIMEOUT)
        seconds = time.monotonic() - started
        try:
            parsed: Any = json.loads(raw)
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        portkey_headers = {k: v for k, v in got.items() if k.startswith("x-portkey-")}
        calls = self.recorder.wait_quiet(lane)
        return Observation(status, portkey_headers, parsed, calls, seconds)

    def run(self, case: Case, scripts: Mapping[str, Any] | None = None) -> tuple[
            Observation, Observation]:  # fmt: skip
        """One request of `case` through both gateways at once (each on its own lane of the
        upstream, both lanes loaded with the case's script, or `scripts[lane]`)."""
        for lane in ("portkey", "ours"):
            script = case.script if scripts is None else scripts[lane]
            self.recorder.load(script, lanes=(lane,))
        with ThreadPoolExecutor(2) as pool:
            pk = pool.submit(self.observe, "portkey", case)
            ours = pool.submit(self.observe, "ours", case)
            return pk.result(), ours.result()


def explain(case: Case, portkey: list[Observation], ours: list[Observation],
            found: list[str]) -> str:  # fmt: skip
    """A difference report: the case, both observations, what differs."""
    return "\n".join([
        f"{case.name}: the gateways differ",
        *(f"  - {line}" for line in found),
        f"config: {json.dumps(case.config)}",
        f"script: {json.dumps(case.script)}  metadata: {json.dumps(case.metadata)}  "
        f"extra body: {json.dumps(case.body)}",
        "Portkey 1.15.2: " + json.dumps([o.report() for o in portkey], default=str),
        "ours:           " + json.dumps([o.report() for o in ours], default=str),
    ])  # fmt: skip
