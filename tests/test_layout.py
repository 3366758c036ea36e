"""The layout holds: no import circle anywhere in the packages, the runtime never imports the
compiler, and the runtime's layers import one way (DESIGN-NOTES.md, "The pipeline is the
architecture").

Imports are read with `ast` from every module: lazy imports inside functions count, those
under `if TYPE_CHECKING:` do not (they never run). An import names the module it loads; for
`from package import name` that is `package.name` when that is a module, else `package`.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

K = TypeVar("K")
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("catalog_compiler", "runtime", "benchmarks")

# Runtime layers, lowest first. A module belongs to the layer of its longest matching prefix
# (a prefix is a module name or a package). After a regroup only the prefixes change.
LAYERS: dict[str, tuple[str, ...]] = {
    "bundle": ("runtime.bundle",),
    "routing": ("runtime.routing",),
    "limits": ("runtime.limits",),
    "upstream": ("runtime.upstream",),
    "gateway": ("runtime.gateway",),
    # the package itself only re-exports, lazily (runtime/__init__.py)
    "facade": ("runtime",),
}

# Which layer may import which (besides itself), as today's code does: routing reads the
# limits' types (Store, Reservation, chain specs); limits and upstream read only the bundle
# layer and not each other; upstream never reads routing. An import not allowed here fails.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "bundle": frozenset(),
    "limits": frozenset({"bundle"}),
    "upstream": frozenset({"bundle"}),
    "routing": frozenset({"bundle", "limits"}),
    "gateway": frozenset({"bundle", "limits", "routing", "upstream"}),
    "facade": frozenset({"bundle", "limits", "routing", "upstream", "gateway"}),
}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def module_files(packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Module name → file, for every module under the given top-level packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes_that_run(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of `if TYPE_CHECKING:` (their `else:` does run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _base(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module a (possibly relative) `from` import names."""
    if level == 0:
        return name or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


def imports_of(module: str, path: Path, known: Mapping[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []
    for node in _nodes_that_run(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, is_package, node.level, node.module)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            # `import a.b.c` loads a.b.c; keep only modules of our own packages
            while target and target not in known:
                target = target.rpartition(".")[0]
            edge = Import(module, target, path, node.lineno)
            if target and target != module and edge not in found:
                found.append(edge)
    return found


def import_graph(known: Mapping[str, Path]) -> list[Import]:
    return [imp for module, path in known.items() for imp in imports_of(module, path, known)]


def find_cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a
    closed path through it (first module repeated at the end), so a message shows the circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    nodes = sorted({*edges, *(t for ts in edges.values() for t in ts)})

    def connect(node: str) -> None:  # recursion depth is bounded by the module count
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(edges.get(node, ())):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                components.append(sorted(component))

    for node in nodes:
        if node not in index:
            connect(node)
    return [_circle(component, edges) for component in components]


def _circle(component: list[str], edges: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside it."""
    inside = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(edges.get(node, ())):
                if succ not in inside or succ in previous:
                    continue
                previous[succ] = node
                if succ == start:
                    path = [start]
                    while path[-1] != start or len(path) == 1:
                        path.append(previous[path[-1]])
                    return path[::-1]
                following.append(succ)
        frontier = following
    return [*component, start]  # unreachable for a real component


def placed(module: str, table: Iterable[tuple[K, Iterable[str]]]) -> K | None:
    """The key whose longest prefix (a module name or a package) names `module`."""
    best: tuple[int, K] | None = None
    for key, prefixes in table:
        for prefix in prefixes:
            hit = module == prefix or module.startswith(prefix + ".")
            if hit and (best is None or len(prefix) > best[0]):
                best = (len(prefix), key)
    return best[1] if best else None


def layer_of(module: str) -> str | None:
    return placed(module, LAYERS.items())


def layer_violations(imports: Iterable[Import]) -> list[str]:
    wrong = []
    for imp in imports:
        if not imp.source.startswith("runtime"):
            continue
        if imp.target.split(".")[0] == "catalog_compiler":
            wrong.append(f"{imp.where()}: {imp.source} imports the compiler ({imp.target})")
            continue
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src is None or dst is None:
            missing = imp.source if src is None else imp.target
            wrong.append(f"{imp.where()}: {missing} is in no layer of LAYERS")
        elif src != dst and dst not in MAY_IMPORT[src]:
            wrong.append(
                f"{imp.where()}: {imp.source} ({src}) imports {imp.target} ({dst}),"
                f" but {src} may import only {', '.join(sorted(MAY_IMPORT[src])) or 'itself'}"
            )
    return wrong


def _edges(imports: Iterable[Import]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in imports:
        edges.setdefault(imp.source, set()).add(imp.target)
    return edges


# -- the tests ---------------------------------------------------------------------------


def test_no_import_circles() -> None:
    known = module_files()
    imports = import_graph(known)
    cycles = find_cycles(_edges(imports))
    lines = {(imp.source, imp.target): imp.where() for imp in imports}
    report = [
        " -> ".join(cycle)
        + "\n    "
        + "\n    ".join(f"{a} -> {b} at {lines[a, b]}" for a, b in itertools.pairwise(cycle))
        for cycle in cycles
    ]
    assert not cycles, "import circles:\n" + "\n".join(report)


def test_runtime_layers_import_one_way() -> None:
    known = module_files()
    unplaced = [m for m in known if m.startswith("runtime") and layer_of(m) is None]
    assert not unplaced, f"runtime modules in no layer of LAYERS: {unplaced}"
    wrong = layer_violations(import_graph(known))
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_errors_is_the_base() -> None:
    """runtime/bundle/errors.py imports nothing from the runtime: every other module raises its
    exceptions, so it must not depend on any of them."""
    known = module_files(("runtime",))
    errors = "runtime.bundle.errors"
    found = [f"{imp.where()}: {imp.target}" for imp in imports_of(errors, known[errors], known)]
    assert not found, f"{errors} imports from the runtime: {found}"


def test_layers_may_import_is_acyclic() -> None:
    assert not find_cycles({k: set(v) for k, v in MAY_IMPORT.items()})


def test_checker_finds_a_planted_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"e"}, "f": {"a"}}
    assert find_cycles(edges) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}}) == []


def test_checker_reads_lazy_relative_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .low import x\n")
    (package / "low.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import high\n"
        "def f():\n    from . import high\n"
    )
    (package / "high.py").write_text("import pkg.low\n")
    known = {
        "pkg": package / "__init__.py",
        "pkg.low": package / "low.py",
        "pkg.high": package / "high.py",
    }
    graph = {
        (i.source, i.target, i.line) for m, p in known.items() for i in imports_of(m, p, known)
    }
    assert graph == {("pkg", "pkg.low", 1), ("pkg.low", "pkg.high", 5), ("pkg.high", "pkg.low", 1)}
    edges = {"pkg.low": {"pkg.high"}, "pkg.high": {"pkg.low"}}
    assert find_cycles(edges) == [["pkg.high", "pkg.low", "pkg.high"]]


def test_checker_reports_an_upward_import() -> None:
    planted = Import(
        "runtime.bundle.errors", "runtime.gateway.app", ROOT / "runtime/bundle/errors.py", 7
    )
    compiler = Import(
        "runtime.routing.router", "catalog_compiler.cli", ROOT / "runtime/routing/router.py", 3
    )
    assert layer_violations([planted, compiler]) == [
        "runtime/bundle/errors.py:7: runtime.bundle.errors (bundle) imports runtime.gateway.app (gateway),"
        " but bundle may import only itself",
        "runtime/routing/router.py:3: runtime.routing.router imports the compiler (catalog_compiler.cli)",
    ]


if __name__ == "__main__":  # print the runtime's layer-to-layer imports (for reviewing LAYERS)
    found: dict[tuple[str | None, str | None], list[str]] = {}
    for imp in import_graph(module_files()):
        if imp.source.startswith("runtime"):
            key = (layer_of(imp.source), layer_of(imp.target))
            found.setdefault(key, []).append(f"{imp.source} -> {imp.target} ({imp.where()})")
    for (src, dst), rows in sorted(found.items(), key=str):
        if src != dst:
            print(f"{src} -> {dst}:", *rows, sep="\n    ")
    print(*(" -> ".join(c) for c in find_cycles(_edges(import_graph(module_files())))), sep="\n")


# The compiler's stages, earliest first (docs/architecture.md): a module may import its own
# stage and earlier ones, never a later one. The package itself only names the program.
STAGES: tuple[tuple[str, ...], ...] = (
    ("catalog_compiler.diagnostics", "catalog_compiler.registry", "catalog_compiler.services"),
    ("catalog_compiler.load", "catalog_compiler.model"),
    ("catalog_compiler.check",),
    ("catalog_compiler.resolve", "catalog_compiler.emit"),
    ("catalog_compiler.pipeline",),
    ("catalog_compiler.compiler",),
    ("catalog_compiler.tools",),
    ("catalog_compiler.cli", "catalog_compiler.__main__"),
)


def stage_of(module: str) -> int | None:
    return placed(module, enumerate(STAGES))


def stage_violations(imports: Iterable[Import]) -> list[str]:
    wrong = []
    for imp in imports:
        if not imp.source.startswith("catalog_compiler.") or imp.target == "catalog_compiler":
            continue
        src, dst = stage_of(imp.source), stage_of(imp.target)
        if src is None or dst is None:
            if imp.target.startswith("catalog_compiler"):
                missing = imp.source if src is None else imp.target
                wrong.append(f"{imp.where()}: {missing} is in no stage of STAGES")
        elif dst > src:
            wrong.append(f"{imp.where()}: {imp.source} imports a later stage ({imp.target})")
    return wrong


def test_compiler_stages_import_backwards_only() -> None:
    known = module_files(("catalog_compiler",))
    unplaced = [m for m in known if m != "catalog_compiler" and stage_of(m) is None]
    assert not unplaced, f"compiler modules in no stage of STAGES: {unplaced}"
    wrong = stage_violations(import_graph(known))
    assert not wrong, "imports of a later stage:\n" + "\n".join(wrong)


def test_checker_reports_a_later_stage() -> None:
    planted = Import("catalog_compiler.load.sources", "catalog_compiler.check.files",
                     ROOT / "catalog_compiler/load/sources.py", 9)  # fmt: skip
    assert stage_violations([planted]) == [
        "catalog_compiler/load/sources.py:9: catalog_compiler.load.sources imports a later stage"
        " (catalog_compiler.check.files)"
    ]
