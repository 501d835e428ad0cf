"""The import graph of ``python/driftline``: no cycle, and no import up the layer order of docs/design.md.

Every import counts, ``TYPE_CHECKING`` and function-local ones included: a cycle hidden behind either still ties
the modules together (and breaks the moment someone moves the import to the top).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "python" / "driftline"
# Top to bottom; a module may import its own layer's packages and the ones below, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("http", "cli", "dashboard"),
    ("server",),
    ("lifecycle", "registry", "jobs", "feedback", "experiments", "tune", "ops"),
    ("serving", "drift", "quality", "capture", "stats"),
    ("store", "backends", "repository", "protocol"),
    ("config",),
    ("security", "errors", "logs", "_core"),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
# Within a layer imports may go either way, except between the front ends: `driftline serve` starts the HTTP front
# end, and nothing in http may reach back into the command line.
FORBIDDEN = {("http", "cli")}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    # A compiled extension is known by its stub (`_core.pyi`), so imports of it are edges like any other.
    for path in [*ROOT.rglob("*.py"), *ROOT.rglob("*.pyi")]:
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.setdefault(name, path)
    return out


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        # `from driftline.x import y` imports module x.y when y is one, else a name of x.
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    out = []
    for name in names:
        if not name.startswith("driftline"):
            continue
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        out.append(name)
    return out


def _edges(name: str, path: Path, source: str, modules: dict[str, Path]) -> set[str]:
    """Every module ``source`` imports: ast.walk visits imports under ``if TYPE_CHECKING:`` and in functions too."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.update(t for t in _targets(name, path, node, modules) if t != name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _edges(name, path, path.read_text(), modules) for name, path in modules.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_checker_sees_imports_of_every_kind() -> None:
    """A TYPE_CHECKING, a function-local, a relative and an extension import are edges too (the checker could
    otherwise pass vacuously)."""
    modules = _modules()
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
from driftline.errors import BadRequest
from . import routing
if TYPE_CHECKING:
    from driftline.store.audit import AuditLog
def later() -> None:
    from driftline.security.keys import KeyRing
    import driftline.protocol.codec
"""
    path = ROOT / "serving" / "example.py"
    edges = _edges("driftline.serving.example", path, source, modules)
    assert edges == {
        "driftline.errors",
        "driftline.serving.routing",
        "driftline.store.audit",
        "driftline.security.keys",
        "driftline.protocol.codec",
    }
    graph = _graph()
    assert "driftline._core" in graph["driftline.errors"]
    # The package face imports only the extension, so an import of `driftline` itself hides no layer.
    assert graph["driftline"] == {"driftline._core"}


def test_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m in _modules()} - {""}
    assert packages <= set(RANK), f"packages missing from LAYERS (and docs/design.md): {packages - set(RANK)}"


def test_no_loose_top_level_module() -> None:
    loose = {p.name for p in ROOT.glob("*.py")} - {"__init__.py", "errors.py"}
    assert not loose, f"top-level modules outside a package: {sorted(loose)}"


def test_no_import_goes_up_the_layers() -> None:
    upward = [
        f"{source} -> {target}"
        for source, targets in sorted(_graph().items())
        for target in sorted(targets)
        if _package(source) in RANK and _package(target) in RANK and RANK[_package(target)] < RANK[_package(source)]
    ]
    assert upward == []


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_at_most_400_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{path.relative_to(ROOT)} has {lines} lines"
