"""Budget leasing, simulated: N gateway replicas spending one shared budget.

Pure Python, deterministic per seed, no Redis: "Redis load" is the number of scripts the
scheme would run (one round trip each). Every scheme sees the same requests (arrival time,
replica, estimate, actual cost, duration) for a given (shape, replicas, seed).

Schemes
- exact: what the runtime does today. Every admission is one script that checks
  `spent + estimate <= budget` and reserves the estimate; every settlement is one script
  that corrects the reservation to the actual cost. 2 scripts per admitted request, 1 per
  refused one.
- lease: a replica admits only within a block it already holds ("reserve before spend").
  When its local remainder cannot cover a request it asks Redis for a block (one script:
  grant `max(need, block)` if the budget's unleased remainder covers `need`, else refuse).
  Settlement is local: the refund `estimate - actual` goes back into the replica's block.
  An idle replica returns its remainder (one script) after `idle_return` seconds; a
  replica holding a block renews it (one script, reporting what it holds) at most every
  `renew` seconds; a refused acquisition is remembered for `negative_ttl` seconds (requests
  needing more than the remainder Redis reported are refused locally meanwhile).
- lease-adaptive: the same, but a grant is `max(need, min(block, remainder // (2 N)))`:
  blocks shrink as the budget runs out, so the tail is spent almost exactly.
- optimistic ("spend, then report"): a replica admits against its last view of the global
  counter plus what it spent since, and reports (one INCRBY) whenever its unreported spend
  reaches a block. What some gateways do for budgets; here for comparison.

A replica that dies (shape `death`) never settles its in-flight requests; the provider
still bills their actual cost. Its lease either counts as spent (`expiry="forfeit"`, the
design) or Redis returns what the replica last reported as unspent when the lease's TTL
runs out (`expiry="return"`), and its unreported spend is lost to `optimistic`.

Measured per run: overshoot = max(0, billed - budget), under-use = max(0, budget - billed)
(the offered demand is twice the budget, so budget left unspent is budget refused to
someone), and Redis scripts per offered request.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

SHAPES = ("uniform", "hot", "bursty", "heavy", "underestimate", "death")
SCHEMES = ("exact", "lease", "lease-adaptive", "optimistic")

BUDGET = 5_000_000  # units (tokens, or micro-USD): 5,000 mean estimates
MEAN_ESTIMATE = 1_000
HORIZON = 100.0  # seconds of traffic
DEMAND = 2.0  # offered actual cost / budget
MEAN_DURATION = 2.0  # seconds a request is in flight (exponential)
DEATH_AT = 30.0  # shape `death`: replica 0 dies here, a fresh replica takes its traffic


@dataclass(frozen=True, slots=True)
class Request:
    t: float
    replica: int
    estimate: int
    actual: int
    duration: float


@dataclass(frozen=True, slots=True)
class Params:
    block: int  # lease block (units)
    idle_return: float = 5.0
    renew: float = 10.0
    ttl: float = 30.0
    negative_ttl: float = 1.0
    expiry: str = "forfeit"  # forfeit | return: what a dead replica's lease becomes


@dataclass(frozen=True, slots=True)
class Outcome:
    offered: int
    admitted: int
    billed: int  # sum of actual costs of admitted requests (what the providers charge)
    ops: int  # Redis scripts that admitted, settled, granted, returned or covered a debt
    refused_ops: int = 0  # Redis scripts that refused (exact: one per refused request)
    renew_ops: int = 0  # lease renewals (time-driven: replicas / renew per second)
    budget: int = BUDGET

    @property
    def ops_per_admitted(self) -> float:
        return self.ops / self.admitted if self.admitted else 0.0

    @property
    def overshoot(self) -> int:
        return max(0, self.billed - self.budget)

    @property
    def underuse(self) -> int:
        return max(0, self.budget - self.billed)


# -- traffic --------------------------------------------------------------------------------
def _cost(rng: random.Random, sigma: float) -> int:
    mu = math.log(MEAN_ESTIMATE) - sigma * sigma / 2  # mean MEAN_ESTIMATE
    return max(1, min(int(rng.lognormvariate(mu, sigma)), 50 * MEAN_ESTIMATE))


def traffic(shape: str, replicas: int, seed: int) -> list[Request]:
    """Requests sorted by arrival. Actual cost is 30-100% of the estimate (max_tokens set),
    except in `underestimate` where 30% of requests cost 1-4x their estimate (no max_tokens,
    a model without a known output limit)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}")
    rng = random.Random(f"{shape}/{replicas}/{seed}")
    sigma = 1.5 if shape == "heavy" else 0.5
    ratio = 0.65 if shape != "underestimate" else 0.7 * 0.65 + 0.3 * 2.5
    count = int(DEMAND * BUDGET / (MEAN_ESTIMATE * ratio))
    times: list[float] = []
    targets: list[int] = []
    if shape == "bursty":  # bursts of ~40 requests within 1 s, each burst at one replica
        while len(times) < count:
            start = rng.uniform(0, HORIZON - 1)
            target = rng.randrange(replicas)
            for _ in range(min(1 + int(rng.expovariate(1 / 40)), count - len(times))):
                times.append(start + rng.random())
                targets.append(target)
        order = sorted(range(count), key=times.__getitem__)
        times, targets = [times[i] for i in order], [targets[i] for i in order]
    else:
        times = sorted(rng.uniform(0, HORIZON) for _ in range(count))
        for _ in range(count):
            if shape == "hot" and replicas > 1 and rng.random() < 0.5:
                targets.append(0)  # one replica takes half the traffic
            else:
                targets.append(rng.randrange(replicas))
    requests = []
    for t, target in zip(times, targets, strict=True):
        estimate = _cost(rng, sigma)
        if shape == "underestimate" and rng.random() < 0.3:
            actual = int(estimate * rng.uniform(1.0, 4.0))
        else:
            actual = max(1, int(estimate * rng.uniform(0.3, 1.0)))
        if shape == "death" and target == 0 and t >= DEATH_AT:
            target = replicas  # the replacement of the dead replica
        duration = rng.expovariate(1 / MEAN_DURATION)
        requests.append(Request(t, target, estimate, actual, duration))
    return requests


# -- schemes --------------------------------------------------------------------------------
def run(scheme: str, requests: list[Request], replicas: int, params: Params,
        dead: int | None = None, budget: int = BUDGET) -> Outcome:  # fmt: skip
    """Play `requests` through `scheme`; replica `dead` dies at DEATH_AT (if given)."""
    if scheme == "exact":
        return _exact(requests, dead, budget)
    if scheme in ("lease", "lease-adaptive"):
        return _lease(requests, replicas, params, scheme == "lease-adaptive", dead, budget)
    if scheme == "optimistic":
        return _optimistic(requests, replicas, params, dead, budget)
    raise ValueError(f"unknown scheme {scheme!r}")


def _exact(requests: list[Request], dead: int | None, budget: int) -> Outcome:
    spent = 0  # the Redis counter: reservations and settled corrections
    billed = admitted = ops = refused = 0
    pending: list[tuple[float, int, int]] = []  # (settle time, estimate, actual)
    for r in requests:
        while pending and pending[0][0] <= r.t:
            _, estimate, actual = heapq.heappop(pending)
            spent += actual - estimate
            ops += 1
        if spent + r.estimate > budget:
            refused += 1
            continue
        ops += 1
        spent += r.estimate
        admitted += 1
        billed += r.actual
        if dead is not None and r.replica == dead and r.t + r.duration >= DEATH_AT:
            continue  # in flight when its replica died: never settled
        heapq.heappush(pending, (r.t + r.duration, r.estimate, r.actual))
    ops += len(pending)
    return Outcome(len(requests), admitted, billed, ops, refused, 0, budget)


class _Replica:
    __slots__ = ("alive", "denied_room", "denied_until", "held", "idle_since", "inflight",
                 "owed", "renewed", "reported", "unreported", "view")  # fmt: skip

    def __init__(self) -> None:
        self.held = 0  # lease: what this replica may still admit from its blocks
        self.owed = 0  # lease: excess costs charged to Redis beyond this replica's blocks
        self.inflight = 0
        self.idle_since = 0.0
        self.renewed = 0.0
        self.reported = 0  # lease: `held` as Redis last heard it
        self.denied_until = -1.0
        self.denied_room = 0
        self.unreported = 0  # optimistic: spend not yet reported
        self.view = 0  # optimistic: the global counter as last read
        self.alive = True


def _lease(requests: list[Request], replicas: int, p: Params, adaptive: bool,
           dead: int | None, budget: int) -> Outcome:  # fmt: skip
    granted = 0  # the Redis counter: blocks handed out (and debts covered), minus returns
    billed = admitted = ops = refused = renewed = 0
    nodes = [_Replica() for _ in range(replicas + 1)]  # + the replacement of a dead one
    events: list[tuple[float, int, int, int, int]] = []  # (time, kind, replica, est, act)
    SETTLE, IDLE, DEATH, EXPIRE = 0, 1, 2, 3
    if dead is not None:
        heapq.heappush(events, (DEATH_AT, DEATH, dead, 0, 0))

    def give_back(node: _Replica) -> None:
        nonlocal granted, ops
        if node.held > 0:
            granted -= node.held
            node.held = node.reported = 0
            ops += 1

    def handle(until: float) -> None:
        nonlocal granted, ops
        while events and events[0][0] <= until:
            at, kind, i, estimate, actual = heapq.heappop(events)
            node = nodes[i]
            if kind == SETTLE:
                if not node.alive:
                    continue  # died with it in flight: billed, never settled
                refund = estimate - actual
                if refund > 0 and node.owed > 0:  # a refund first pays back a covered excess
                    back = min(refund, node.owed)
                    node.owed -= back
                    granted -= back
                    refund -= back
                    ops += 1
                node.held += refund  # local: the refund, or the excess
                if node.held < 0:  # more than this replica holds: charged to Redis at once
                    granted -= node.held
                    node.owed -= node.held
                    node.held = 0
                    ops += 1
                node.inflight -= 1
                if node.inflight == 0:
                    node.idle_since = at
                    heapq.heappush(events, (at + p.idle_return, IDLE, i, 0, 0))
            elif kind == IDLE:
                if node.alive and node.inflight == 0 and node.idle_since + p.idle_return <= at:
                    give_back(node)
            elif kind == DEATH:
                node.alive = False
                if p.expiry == "return":
                    heapq.heappush(events, (node.renewed + p.ttl, EXPIRE, i, 0, 0))
            elif kind == EXPIRE:  # Redis takes back what the dead replica last reported
                granted -= max(node.reported, 0)

    for r in requests:
        handle(r.t)
        node = nodes[r.replica]
        if node.held < r.estimate:
            need = r.estimate - node.held
            if r.t < node.denied_until and need > node.denied_room:
                refused += 1  # refused locally: Redis said so less than negative_ttl ago
                continue
            room = budget - granted
            if room < need:
                node.denied_until, node.denied_room = r.t + p.negative_ttl, room
                refused += 1
                continue
            ops += 1  # acquire: one script
            block = min(p.block, room // (2 * replicas)) if adaptive else p.block
            grant = min(max(need, block), room)
            granted += grant
            node.held += grant
            node.reported, node.renewed = node.held, r.t
        elif r.t - node.renewed >= p.renew:
            renewed += 1  # renew the lease, reporting what is held
            node.reported, node.renewed = node.held, r.t
        node.held -= r.estimate
        node.inflight += 1
        admitted += 1
        billed += r.actual
        heapq.heappush(events, (r.t + r.duration, SETTLE, r.replica, r.estimate, r.actual))
    handle(math.inf)
    for node in nodes:
        if node.alive:
            give_back(node)  # the end of the traffic (counted, like any return)
    return Outcome(len(requests), admitted, billed, ops, refused, renewed, budget)


def _optimistic(requests: list[Request], replicas: int, p: Params, dead: int | None,
                budget: int) -> Outcome:  # fmt: skip
    total = 0  # the Redis counter: reported spend
    billed = admitted = ops = refused = 0
    nodes = [_Replica() for _ in range(replicas + 1)]
    settles: list[tuple[float, int, int, int]] = []
    died = False
    for r in requests:
        while settles and settles[0][0] <= r.t:
            _, i, estimate, actual = heapq.heappop(settles)
            if nodes[i].alive:
                nodes[i].unreported += actual - estimate
        if dead is not None and not died and r.t >= DEATH_AT:
            nodes[dead].alive = False  # its unreported spend is lost with it
            died = True
        node = nodes[r.replica]
        if node.view + node.unreported + r.estimate > budget:
            if r.t >= node.denied_until:  # look again, at most every negative_ttl
                refused += 1
                total += node.unreported
                node.unreported, node.view = 0, total
                node.denied_until = r.t + p.negative_ttl
            if node.view + node.unreported + r.estimate > budget:
                continue
        node.unreported += r.estimate
        admitted += 1
        billed += r.actual
        heapq.heappush(settles, (r.t + r.duration, r.replica, r.estimate, r.actual))
        if node.unreported >= p.block:
            ops += 1  # INCRBY: report, and read everyone's total
            total += node.unreported
            node.unreported, node.view = 0, total
    return Outcome(len(requests), admitted, billed, ops, refused, 0, budget)


# -- the bounds ----------------------------------------------------------------------------
def underestimated(requests: list[Request]) -> int:
    """The settle error both schemes share: what admitted requests cost beyond their
    estimates, summed over all requests (a loose upper bound on any scheme's overshoot
    that reserves estimates)."""
    return sum(max(0, r.actual - r.estimate) for r in requests)
