"""Layers point one way and no module imports itself back: read from the source, imports at any level.

protocol facts and the Redis connection they share (``gsy_e_sdk.wire``) <- SDK (``gsy_e_sdk``)
<- fleet (``orchestrator``, ``workers``); protocol <- local exchange (``gsy_local_exchange``).
Strategies are a leaf. The CLIs are the composition roots: ``gsy_e_sdk.cli`` names the other
layers' commands only as strings, loaded when they run. Run
``pytest tests/unit/test_layers.py -q`` to see every violation at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gsy_e_sdk", "gsy_local_exchange", "orchestrator", "workers", "gsy_framework", "d3a_api_client")
PROTOCOL = "gsy_e_sdk.wire"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every module this file imports, at module level or inside functions."""
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for statement in node.body
        for child in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # annotations only: no import at run time
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
    graph = {}
    for module, path in modules.items():
        # An import of a module's own ancestor package is implied by the module's very name: not an edge.
        graph[module] = {
            name
            for name in _imports(path, module)
            if name in modules and name != module and not module.startswith(name + ".")
        }
    return graph


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_no_layer_imports_a_layer_above_it():
    graph = _graph()
    rules = [  # (who, may not import, except)
        ("gsy_e_sdk", ("gsy_local_exchange", "orchestrator", "workers"), ()),
        (PROTOCOL, ("gsy_e_sdk",), (PROTOCOL,)),
        ("gsy_local_exchange", ("orchestrator", "workers", "gsy_e_sdk"), (PROTOCOL,)),
        # Strategies are a pure leaf: protocol facts (order models, the price ramp) and nothing above.
        ("workers.strategies", ("orchestrator", "gsy_e_sdk", "gsy_local_exchange"), (PROTOCOL,)),
    ]
    violations = sorted(
        f"{module} -> {target}"
        for who, banned, allowed in rules
        for module, targets in graph.items()
        if _within(module, who)
        for target in targets
        if any(_within(target, b) for b in banned) and not any(_within(target, a) for a in allowed)
    )
    assert violations == []


def test_strategies_import_no_celery():
    for path in (ROOT / "workers" / "strategies").rglob("*.py"):
        names = _imports(path, _module_name(path))
        assert not {name for name in names if name.split(".")[0] in ("celery", "kombu")}, path


def test_no_import_cycles():
    graph = _graph()
    cycles, state = [], {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
