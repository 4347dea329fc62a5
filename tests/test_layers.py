"""The package's folders are its layers, and imports only go down.

Layers, lowest first: the shared leaves (``errors``, ``money``, ``vocab``,
``durable``, ``cardno``, ``paths``, ``pipeline``, ``timeconv``, ``business_date``) and the compiled
core ``_fast``; ``io``; ``rules``; ``state``; ``engine``; the run orchestration
(``runner``, ``summary``, ``fixtures``); ``audit``; the command line and the package
facade.  A module may import its own layer and the layers below it, never one above —
function-level imports included — and no modules import each other in a circle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import txcore

ROOT = Path(txcore.__file__).parent

RANKS = {"leaf": 0, "io": 1, "rules": 2, "state": 3, "engine": 4, "orchestration": 5,
         "audit": 6, "top": 7}
LEAVES = {"errors", "money", "vocab", "programme", "durable", "cardno", "paths", "pipeline",
          "timeconv", "business_date", "bounds", "_fast"}
ORCHESTRATION = {"runner", "summary", "fixtures", "switchlog", "plan"}
TOP = {"cli", "__init__", "__main__"}


def layer(module: str) -> str:
    """``txcore.io.reader`` -> ``io``; ``txcore.runner`` -> ``orchestration``."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "__init__"
    if head in LEAVES:
        return "leaf"
    if head in ORCHESTRATION:
        return "orchestration"
    if head in TOP:
        return "top"
    return head


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imports(module: str, source: str, is_package: bool) -> set[str]:
    """Every txcore module ``source`` imports, at any depth of the code."""
    out = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("txcore"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("txcore"):
                continue
            out.add(target)
            for a in node.names:  # `from txcore.state import keys` imports a module
                out.add(f"{target}.{a.name}")
    return out


def sources() -> dict[str, tuple[str, bool]]:
    return {module_name(p): (p.read_text(), p.name == "__init__.py")
            for p in sorted(ROOT.rglob("*.py"))}


def graph(srcs: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    known = set(srcs)
    return {m: {t for t in imports(m, s, pkg) if t in known and t != m and t != "txcore"}
            for m, (s, pkg) in srcs.items()}


def wrong_way(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for m, targets in edges.items():
        for t in targets:
            if RANKS[layer(t)] > RANKS[layer(m)]:
                bad.append(f"{m} ({layer(m)}) imports {t} ({layer(t)})")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def package_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Cycles between layers (folders), e.g. state -> engine -> state."""
    folded: dict[str, set[str]] = {}
    for m, targets in edges.items():
        folded.setdefault(layer(m), set()).update(layer(t) for t in targets if layer(t) != layer(m))
    return cycles(folded)


def test_every_module_is_in_a_known_layer():
    unknown = sorted(m for m in sources() if layer(m) not in RANKS)
    assert not unknown, f"modules outside every layer: {unknown}"


def test_imports_only_go_down():
    assert wrong_way(graph(sources())) == []


def test_nothing_imports_in_a_circle():
    edges = graph(sources())
    assert cycles(edges) == []
    assert package_cycles(edges) == []


@pytest.mark.parametrize("module, planted", [
    ("txcore.io.reader", "from txcore.engine.compiled import CythonEngine"),
    ("txcore.rules.book", "import txcore.audit.replay"),
    ("txcore.state.store", "    from txcore.runner import run"),  # a lazy import counts too
    ("txcore.state.memory", "from txcore import cli"),
])
def test_a_planted_wrong_way_import_is_caught(module, planted):
    srcs = sources()
    text, pkg = srcs[module]
    body = planted if not planted.startswith(" ") else "def _f():\n" + planted
    srcs[module] = (text + "\n" + body + "\n", pkg)
    bad = wrong_way(graph(srcs))
    assert len(bad) == 1 and bad[0].startswith(module)


def test_a_planted_circle_is_caught():
    srcs = sources()
    text, pkg = srcs["txcore.timeconv"]
    srcs["txcore.timeconv"] = (text + "\nfrom txcore import money\n", pkg)
    text, pkg = srcs["txcore.money"]
    srcs["txcore.money"] = (text + "\nfrom txcore import timeconv\n", pkg)
    assert ["txcore.money", "txcore.timeconv"] in cycles(graph(srcs))
