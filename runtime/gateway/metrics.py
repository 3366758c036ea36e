"""Prometheus metrics of the gateway, served at `/metrics`.

Every label value is a catalog slug (workspace, provider, model), an HTTP status, a token
kind, or one of the gateway's own refusal codes and counter levels: never client input, so
the number of series is bounded by the catalog. `prometheus_client` is imported here only:
with `--workers N` the supervisor points PROMETHEUS_MULTIPROC_DIR at a shared directory
before any worker imports it, and a scrape of any worker sums them all."""

from __future__ import annotations

import os
from typing import Any

from runtime.bundle.money import UNITS_PER_USD

NAMESPACE = "catalog"
# seconds: from a fast local upstream to a long generation
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_CHILDREN = 100_000
MAX_OBSERVED = 10_000  # histogram observations held before they are passed on
UNITS_PER_MICRO_USD = UNITS_PER_USD // 1_000_000


class Tally:
    """What one (workspace, provider, model) did since the last scrape: a request's books
    add to it with a few integer additions, where a counter increment per figure (a label
    tuple, a key and a dict update each) cost ~10% of a request's instructions."""

    __slots__ = ("catalog", "charged", "inputs", "outputs", "reads", "settled", "statuses",
                 "writes")  # fmt: skip

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.settled = 0  # tickets settled (a cost series exists once one was, even at 0)
        self.inputs = self.outputs = self.reads = self.writes = 0
        self.catalog = self.charged = 0  # exact units of 1e-16 USD


class Metrics:
    """One per process. `text()` is the exposition a scrape gets."""

    def __init__(self) -> None:
        import prometheus_client as pc

        self._pc = pc
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # counter increments not yet passed on: (counter, labels) -> sum (see `count`)
        self._due: dict[tuple[Any, tuple[str, ...]], float] = {}
        # histogram observations not yet passed on: (histogram, labels, value) (`observe`)
        self._observed: list[tuple[Any, tuple[str, ...], float]] = []
        # per (workspace, provider, model): requests, tokens and cost since the last scrape
        self._tallies: dict[tuple[str, str, str], Tally] = {}
        self.registry = pc.CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        own = None if self.multiprocess else self.registry  # multiprocess: files, summed
        model = ("workspace", "provider", "model")

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Any:
            return pc.Counter(name, doc, labels, namespace=NAMESPACE, registry=own)

        def histogram(name: str, doc: str) -> Any:
            return pc.Histogram(name, doc, ("provider", "model"), namespace=NAMESPACE,
                                registry=own, buckets=LATENCY_BUCKETS)  # fmt: skip

        self.requests = counter("requests", "Requests answered, by final status",
                                (*model, "status"))  # fmt: skip
        self.tokens = counter("tokens", "Tokens settled, by kind", (*model, "kind"))
        self.cost = counter("cost_micro_usd", "Cost settled in micro-USD, at the catalog's "
                            "price and at the workspace's chargeback price",
                            (*model, "price"))  # fmt: skip
        self.refusals = counter("refusals", "Requests the gateway refused itself, by reason and "
                                "level of the counter or rule", ("reason", "level"))  # fmt: skip
        self.retries = counter("retries", "Retries of an upstream call", ("provider", "model"))
        self.fallbacks = counter("fallbacks", "Moves to a config's next target", ("workspace",))
        self.latency = histogram("upstream_latency_seconds",
                                 "Upstream time to answer (its headers, for a stream)")  # fmt: skip
        self.ttft = histogram("time_to_first_token_seconds",
                              "Streams: request start to the first event relayed")  # fmt: skip
        # budgets: read from the store at each scrape (every worker reads the same store)
        self._budgets = _Budgets()
        self.registry.register(self._budgets)
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: the label sets are the catalog's, so few,
        and prometheus_client's own lookup (validation, a lock) costs on every request."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            if len(self._children) > MAX_CHILDREN:  # a bound, whatever happens
                self._children.clear()
            found = self._children[key] = metric.labels(*labels)
        return found

    def tally(self, labels: tuple[str, str, str]) -> Tally:
        """The running tally of (workspace, provider, model), passed on at the scrape, or
        by `settle` (never in the middle of a request's books, whose tallies would be lost)."""
        found = self._tallies.get(labels)
        if found is None:
            found = self._tallies[labels] = Tally()
        return found

    def settle(self) -> None:
        """After a request's books: with workers, each scrape reads every worker's files,
        so what the request added is passed on now; alone, when the tallies reach their
        bound (whatever happens, they stay bounded)."""
        if self.multiprocess or len(self._tallies) >= MAX_CHILDREN:
            self._flush_tallies()

    def count(self, metric: Any, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """`metric.labels(*labels).inc(amount)`. In one process, increments are summed here
        and passed on when a scrape asks (`text`): a dict update instead of
        prometheus_client's locked increment per counter per request. With workers, each
        scrape reads every worker's files, so increments are passed on at once."""
        if self.multiprocess:
            self.child(metric, *labels).inc(amount)
            return
        key = (metric, labels)
        due = self._due
        if key in due:
            due[key] += amount
            return
        if len(due) > MAX_CHILDREN:  # a bound, whatever happens
            self.flush()
            due = self._due
        due[key] = amount

    def observe(self, metric: Any, labels: tuple[str, ...], value: float) -> None:
        """`metric.labels(*labels).observe(value)`, held like `count`'s increments: a list
        append instead of prometheus_client's locked bucket search per request."""
        if self.multiprocess:
            self.child(metric, *labels).observe(value)
            return
        self._observed.append((metric, labels, value))
        if len(self._observed) >= MAX_OBSERVED:  # a bound, whatever happens
            self.flush()

    def flush(self) -> None:
        """Pass the summed increments and held observations on to prometheus_client."""
        self._flush_tallies()
        due, self._due = self._due, {}
        for (metric, labels), amount in due.items():
            self.child(metric, *labels).inc(amount)
        observed, self._observed = self._observed, []
        for metric, labels, value in observed:
            self.child(metric, *labels).observe(value)

    def _flush_tallies(self) -> None:
        tallies, self._tallies = self._tallies, {}
        for labels, t in tallies.items():
            for status, n in t.statuses.items():
                self.child(self.requests, *labels, str(status)).inc(n)
            for kind, n in (("input", t.inputs), ("output", t.outputs),
                            ("cache_read", t.reads), ("cache_write", t.writes)):  # fmt: skip
                if n:
                    self.child(self.tokens, *labels, kind).inc(n)
            if t.settled:  # micro-USD as a float (exact to ~15 digits): the usage events
                self.child(self.cost, *labels, "catalog").inc(t.catalog / UNITS_PER_MICRO_USD)
                self.child(self.cost, *labels, "chargeback").inc(t.charged / UNITS_PER_MICRO_USD)

    def budgets(self, rows: list[Any]) -> None:
        """The budget gauges of the next exposition, from `Router.usage()` rows."""
        self._budgets.rows = [row for row in rows if row.kind == "budget"]

    def budgets_unknown(self) -> None:
        """No budget gauges while the store cannot say (unreachable, its counters lost): a
        gauge left from before is stale, and one read from lost counters shows them whole."""
        self._budgets.rows = []

    def text(self) -> bytes:
        self.flush()
        data: bytes = self._pc.generate_latest(self.registry)
        return data

    @property
    def content_type(self) -> str:
        return str(self._pc.CONTENT_TYPE_LATEST)


class _Budgets:
    """The budget gauges, as a collector of the rows the scrape read from the store. Not
    prometheus_client gauges: with workers, their values live in the shared files, and one
    set before the store lost its counters was still served after (a review)."""

    def __init__(self) -> None:
        from prometheus_client.core import GaugeMetricFamily

        self._family = GaugeMetricFamily
        self.rows: list[Any] = []

    def collect(self) -> list[Any]:
        family = self._family
        labels = ("counter", "unit", "period")
        used = family(f"{NAMESPACE}_budget_used_ratio", "Share of each budget taken in its "
                      "current window (settled and in flight)", labels=labels)  # fmt: skip
        remaining = family(f"{NAMESPACE}_budget_remaining", "What each budget still admits in "
                           "its window (USD, tokens or requests)", labels=labels)  # fmt: skip
        for row in self.rows:
            named = (row.counter, row.unit, row.period or "")
            used.add_metric(named, float(row.used))
            remaining.add_metric(named, float(row.remaining))
        return [used, remaining]
