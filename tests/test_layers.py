"""The package's layers: cli -> api -> (bench, domains, core); bench -> core; domains ->
core; nothing imports cli; no import cycles.

Every ``import`` of every module is read from the source (imports inside functions too), so
an edge hidden in a function still counts. Light top-level modules (``errors``, ``paths``,
``sources``, ``plain_csv``, ``progress``) may be used by any layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fewshot_apps"
SHARED = {"fewshot_apps", "fewshot_apps.errors", "fewshot_apps.paths", "fewshot_apps.sources",
          "fewshot_apps.plain_csv", "fewshot_apps.progress"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The fewshot_apps modules ``path`` imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from pkg import module`` imports the module
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return {m for m in found if m.startswith("fewshot_apps")}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: {m for m in imports_of(path) if m in MODULES and m != name}
         for name, path in MODULES.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    if module in SHARED:
        return "shared"
    if len(parts) >= 3 and parts[1] == "domains":
        return f"domain:{parts[2]}"
    return parts[1] if len(parts) > 1 else "package"


# layer -> the layers it must not import
FORBIDDEN = {
    "cli": {"bench", "domain:*", "core"},  # the command line calls api (and lists registries)
    "core": {"api", "cli", "bench", "domain:*"},
    "bench": {"api", "cli", "domain:*"},
    "api": {"cli"},
    "shared": {"api", "cli", "bench", "domain:*"},
}


def forbidden(source: str, target: str) -> bool:
    src, dst = layer(source), layer(target)
    if src == "cli" and target == "fewshot_apps.core.registry":
        return False  # choices and help come from the registries (a light module)
    if dst == "cli" and src != "cli" and source != "fewshot_apps.__main__":
        return True
    if src.startswith("domain:") and dst.startswith("domain:") and src != dst:
        return True  # a domain never imports another domain
    if src.startswith("domain:"):
        return dst in {"api", "cli", "bench"}
    rules = FORBIDDEN.get(src, set())
    return dst in rules or (dst.startswith("domain:") and "domain:*" in rules)


def test_the_walk_sees_imports_inside_functions():
    assert "fewshot_apps.core.baselines" in GRAPH["fewshot_apps.core.fit"]  # inside a function
    assert len(MODULES) > 60


def test_no_forbidden_edge():
    bad = sorted(f"{s} -> {t}" for s, targets in GRAPH.items() for t in targets
                 if forbidden(s, t))
    assert not bad, "forbidden imports:\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return out


def _strip_package_inits(graph_cycles):
    # A package's __init__ importing its own submodules and a submodule importing a sibling
    # through the package are one module in Python's eyes; such pairs are not cycles.
    return [c for c in graph_cycles
            if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]


def test_no_import_cycle():
    cycles = _strip_package_inits(_cycles())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("source, target, bad", [
    ("fewshot_apps.core.training", "fewshot_apps.domains.molecules.store", True),
    ("fewshot_apps.bench.runner", "fewshot_apps.api", True),
    ("fewshot_apps.domains.recsys.dataset", "fewshot_apps.domains.molecules.readers", True),
    ("fewshot_apps.api", "fewshot_apps.cli", True),
    ("fewshot_apps.api", "fewshot_apps.bench.runner", False),
    ("fewshot_apps.domains.recsys.dataset", "fewshot_apps.core.tasks", False),
    ("fewshot_apps.cli", "fewshot_apps.api", False),
    ("fewshot_apps.cli", "fewshot_apps.bench.runner", True),
    ("fewshot_apps.cli", "fewshot_apps.core.registry", False),
])
def test_the_rules_themselves(source, target, bad):
    assert forbidden(source, target) is bad
