"""Dependencies point inward (DESIGN.md "Architecture"): no import cycle; the domains never
import a surface or the composition root; the surfaces never import each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src"
DOMAINS = {
    "audit",
    "catalog",
    "config",
    "errors",
    "guard",
    "decision",  # the decision service: auth, policy, guard, durable entry (every surface asks it)
    "identity",
    "jobs",  # queued work for `clearance worker`: document verification (claimed under a lease)
    "limits",  # rate limits and budgets per person, org and key (in-process or Redis)
    "net",
    "policy",
    "principals",
    "screening",
    "setup",
    "store",
    "witness",  # the tlog-witness protocol, and the small witness server it is a client of
}
SURFACES = {"gateway", "portal", "admin", "integrations"}
ROOT = {"app", "openapi", "maintenance", "background"}  # the composition root
TOP = {"cli", "demo"}  # entry points: may use anything


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "clearance").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every clearance module `name` imports, wherever in the file, except under TYPE_CHECKING
    (a function-local import dodges a cycle at run time; it is still a dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import module` depends on that module; `from pkg import name`, on pkg.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                yield target


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def _top(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_every_package_is_placed() -> None:
    placed = DOMAINS | SURFACES | ROOT | TOP
    assert {_top(m) for m in MODULES if m != "clearance"} <= placed


def test_no_import_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize("kind", ["domain", "surface"])
def test_dependencies_point_inward(kind: str) -> None:
    wrong = []
    for module, targets in GRAPH.items():
        mine = _top(module)
        for target in targets:
            theirs = _top(target)
            if mine == theirs or theirs == "clearance":
                continue
            if kind == "domain" and mine in DOMAINS and theirs not in DOMAINS:
                wrong.append(f"{module} -> {target}")
            if kind == "surface" and mine in SURFACES and theirs in SURFACES | ROOT | TOP:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_walker_sees_what_it_must() -> None:
    """The test above would pass on an empty graph: prove it reads real edges."""
    assert "clearance.policy.state" in GRAPH["clearance.app"]
    assert "clearance.gateway.proxy" in GRAPH["clearance.app"]
    assert "clearance.net.forwarded" in GRAPH["clearance.net.client"]


# The identity package's rooms (docs/identity.md) and the rooms each may import beneath it; the
# top of the package (the decision, cases, review, vault) may import every room, never the reverse.
ROOMS = {
    "mrz": set(),
    "document": {"mrz"},
    "biometrics": set(),
    "assertions": {"mrz"},  # ICAO nationality codes in asserted documents
    "chip": {"mrz", "document"},
}


def test_identity_rooms_have_inward_arrows_only() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        parts = module.split(".")
        if parts[:2] != ["clearance", "identity"] or len(parts) < 3 or parts[2] not in ROOMS:
            continue
        room = parts[2]
        for target in targets:
            where = target.split(".")
            if where[:2] != ["clearance", "identity"] or len(where) < 3 or where[2] == room:
                continue
            if where[2] not in ROOMS[room]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []
    # The test reads real edges: the chip room does read MRZs, and the top does use the rooms.
    assert "clearance.identity.mrz" in {
        ".".join(t.split(".")[:3]) for t in GRAPH["clearance.identity.chip.pa"]
    }
    assert any(
        t.startswith("clearance.identity.assertions")
        for t in GRAPH["clearance.identity.assertion_cases"]
    )
