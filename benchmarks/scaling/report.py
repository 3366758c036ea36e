"""The leasing simulation's grid and its markdown tables (see sim.py for the model)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from benchmarks.scaling.sim import (
    BUDGET,
    MEAN_ESTIMATE,
    SHAPES,
    Outcome,
    Params,
    Request,
    run,
    traffic,
)

REPLICAS = (1, 2, 4, 8, 16, 32)
BLOCKS = (0.001, 0.01, 0.05)  # of the budget
COMPARED = (4, 32)  # replica counts of the scheme comparison


@dataclass(frozen=True)
class Cell:
    outcomes: tuple[Outcome, ...]

    def over(self) -> list[float]:
        return [o.overshoot / BUDGET for o in self.outcomes]

    def under(self) -> list[float]:
        return [o.underuse / BUDGET for o in self.outcomes]

    def ops(self) -> float:
        return statistics.mean(o.ops_per_admitted for o in self.outcomes)


Key = tuple[str, str, int, float]  # scheme (+ variant), shape, replicas, block


def grid(seeds: int, jobs: int = 1) -> dict[Key, Cell]:
    """Every cell of the tables; shapes run in `jobs` processes (results do not depend on it)."""
    results: dict[Key, list[Outcome]] = {}
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            parts = pool.map(_shape, SHAPES, [seeds] * len(SHAPES))
    else:
        parts = map(_shape, SHAPES, [seeds] * len(SHAPES))
    for part in parts:
        results.update(part)
    return {k: Cell(tuple(v)) for k, v in results.items()}


def _shape(shape: str, seeds: int) -> dict[Key, list[Outcome]]:
    results: dict[Key, list[Outcome]] = {}

    def add(key: Key, outcome: Outcome) -> None:
        results.setdefault(key, []).append(outcome)

    for n in REPLICAS:
        dead = 0 if shape == "death" else None
        for seed in range(seeds):
            requests: list[Request] = traffic(shape, n, seed)
            add(("exact", shape, n, 0.0), run("exact", requests, n, Params(1), dead))
            for block in BLOCKS:
                p = Params(int(block * BUDGET))
                add(("lease-adaptive", shape, n, block),
                    run("lease-adaptive", requests, n, p, dead))  # fmt: skip
                if n in COMPARED:
                    for scheme in ("lease", "optimistic"):
                        add((scheme, shape, n, block), run(scheme, requests, n, p, dead))
                if shape == "death":
                    p = Params(int(block * BUDGET), expiry="return")
                    add(("lease-adaptive, expiry returns", shape, n, block),
                        run("lease-adaptive", requests, n, p, dead))  # fmt: skip
    return results


def pct(x: float) -> str:
    return "0" if x == 0 else f"{x:.2%}" if x >= 0.0001 else "<0.01%"


def worst(values: Iterable[float]) -> str:
    return pct(max(values))


def mean_worst(values: list[float]) -> str:
    return f"{pct(statistics.mean(values))} ({pct(max(values))})"


def _header(first: str) -> list[str]:
    return [f"| {first} | " + " | ".join(SHAPES) + " |", "|---|" + "---:|" * len(SHAPES)]


def design_tables(cells: dict[Key, Cell], seeds: int) -> str:
    out = [f"Overshoot: spent beyond the budget, worst of {seeds} seeds (% of the budget)", ""]
    out += _header("scheme, replicas, block")
    for n in REPLICAS:
        out.append(f"| exact, {n} | " + " | ".join(worst(cells["exact", s, n, 0.0].over())
                                                   for s in SHAPES) + " |")  # fmt: skip
    for n in REPLICAS:
        for b in BLOCKS:
            row = [worst(cells["lease-adaptive", s, n, b].over()) for s in SHAPES]
            out.append(f"| lease, {n}, {b:.1%} | " + " | ".join(row) + " |")
    out += ["", f"Under-use: budget left unspent while demand was refused, mean (worst) of "
            f"{seeds} seeds", ""]  # fmt: skip
    out += _header("scheme, replicas, block")
    for n in REPLICAS:
        out.append(f"| exact, {n} | " + " | ".join(mean_worst(cells["exact", s, n, 0.0].under())
                                                   for s in SHAPES) + " |")  # fmt: skip
    for n in REPLICAS:
        for b in BLOCKS:
            row = [mean_worst(cells["lease-adaptive", s, n, b].under()) for s in SHAPES]
            out.append(f"| lease, {n}, {b:.1%} | " + " | ".join(row) + " |")
    out += ["", "Redis scripts per admitted request (mean; exact: one admission + one "
            "settlement)", ""]  # fmt: skip
    out += _header("scheme, replicas, block")
    out.append("| exact, any | " + " | ".join(f"{cells['exact', s, 32, 0.0].ops():.2f}"
                                              for s in SHAPES) + " |")  # fmt: skip
    for n in REPLICAS:
        for b in BLOCKS:
            row = [f"{cells['lease-adaptive', s, n, b].ops():.4f}" for s in SHAPES]
            out.append(f"| lease, {n}, {b:.1%} | " + " | ".join(row) + " |")
    return "\n".join(out)


def comparison_table(cells: dict[Key, Cell], seeds: int) -> str:
    out = [f"Schemes compared: overshoot worst / under-use worst of {seeds} seeds (% of the "
           "budget); scripts per admitted request (uniform traffic)", ""]  # fmt: skip
    shapes = ("uniform", "hot", "bursty", "underestimate", "death")
    out.append("| scheme | replicas | block | " + " | ".join(shapes) + " | scripts/request |")
    out.append("|---|---:|---:|" + "---:|" * (len(shapes) + 1))
    for n in COMPARED:
        out.append(f"| exact | {n} | – | " + " | ".join(
            f"{worst(cells['exact', s, n, 0.0].over())} / {worst(cells['exact', s, n, 0.0].under())}"
            for s in shapes) + f" | {cells['exact', 'uniform', n, 0.0].ops():.2f} |")  # fmt: skip
        for scheme in ("lease", "lease-adaptive", "optimistic"):
            for b in BLOCKS:
                c = {s: cells[scheme, s, n, b] for s in shapes}
                row = [f"{worst(c[s].over())} / {worst(c[s].under())}" for s in shapes]
                out.append(f"| {scheme} | {n} | {b:.1%} | " + " | ".join(row)
                           + f" | {c['uniform'].ops():.4f} |")  # fmt: skip
    return "\n".join(out)


def death_table(cells: dict[Key, Cell], seeds: int) -> str:
    out = [f"A replica dies holding a lease: what its lease becomes (overshoot worst / "
           f"under-use mean of {seeds} seeds)", ""]  # fmt: skip
    out.append("| replicas | block | exact | lease counts as spent (design) | lease's last "
               "reported remainder returned at TTL |")  # fmt: skip
    out.append("|---:|---:|---:|---:|---:|")
    for n in REPLICAS:
        for b in BLOCKS:
            e = cells["exact", "death", n, 0.0]
            f = cells["lease-adaptive", "death", n, b]
            r = cells["lease-adaptive, expiry returns", "death", n, b]
            out.append(
                f"| {n} | {b:.1%} | {worst(e.over())} / {pct(statistics.mean(e.under()))} "
                f"| {worst(f.over())} / {pct(statistics.mean(f.under()))} "
                f"| {worst(r.over())} / {pct(statistics.mean(r.under()))} |"
            )
    return "\n".join(out)


def summary_table(cells: dict[Key, Cell], seeds: int) -> str:
    """The design (adaptive lease, a dead replica's lease forfeited) against exact."""
    bounded = ("uniform", "hot", "bursty", "heavy", "death")
    live = ("uniform", "hot", "bursty", "heavy")
    out = [f"Summary: lease-adaptive vs exact, worst of {seeds} seeds unless said (% of the "
           "budget)", ""]  # fmt: skip
    out.append("| replicas | block | overshoot, estimates bound usage (5 shapes) | overshoot "
               "with underestimates: lease / exact | under-use, live replicas (4 shapes) | "
               "under-use, a replica dies (mean): lease / exact | Redis scripts per admitted "
               "request, uniform (exact: 2) |")  # fmt: skip
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    for n in REPLICAS:
        exact = cells["exact", "underestimate", n, 0.0]
        dead = cells["exact", "death", n, 0.0]
        for b in BLOCKS:
            c = {s: cells["lease-adaptive", s, n, b] for s in SHAPES}
            over = max(max(c[s].over()) for s in bounded)
            under = max(max(c[s].under()) for s in live)
            out.append(
                f"| {n} | {b:.1%} ({b * BUDGET / MEAN_ESTIMATE:g} requests) | {pct(over)} "
                f"| {worst(c['underestimate'].over())} / {worst(exact.over())} | {pct(under)} "
                f"| {pct(statistics.mean(c['death'].under()))} / "
                f"{pct(statistics.mean(dead.under()))} | {c['uniform'].ops():.4f} |"
            )
    return "\n".join(out)


def all_tables(seeds: int, jobs: int = 1) -> str:
    cells = grid(seeds, jobs)
    return "\n\n".join(
        [
            summary_table(cells, seeds),
            design_tables(cells, seeds),
            comparison_table(cells, seeds),
            death_table(cells, seeds),
        ]
    )
