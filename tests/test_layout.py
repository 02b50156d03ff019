"""The package's layout, read from its source with `ast` (nothing is imported, no model is loaded): imports run
down the pipeline's floors, never round in a cycle, modules stay small, and private names stay in their module.

What counts as an import: every `import` / `from ... import` statement anywhere in a module, inside functions
too (a lazy import is still a dependency), except under `if TYPE_CHECKING:`. Only the module named counts, not
the packages above it that Python also runs (every module would otherwise depend on `gpt3mix_hf/__init__.py`),
and `importlib.import_module(name)` calls are not followed.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gpt3mix_hf"
MAX_LINES = 450

# The pipeline's floors, bottom to top: a module imports from its own floor or a lower one. An entry covers the
# module of that name and, for a package, everything under it.
FLOORS = {
    "gpt3mix_hf.validation": 0,
    "gpt3mix_hf.state": 0,
    "gpt3mix_hf.credentials": 0,
    "gpt3mix_hf.models": 0,
    "gpt3mix_hf.spec": 1,
    "gpt3mix_hf.selection": 1,
    "gpt3mix_hf.prompt": 1,
    "gpt3mix_hf.labels": 2,
    "gpt3mix_hf.config": 3,
    "gpt3mix_hf.data": 4,
    "gpt3mix_hf.backends": 5,
    "gpt3mix_hf.labeller": 6,
    "gpt3mix_hf.batches": 6,
    "gpt3mix_hf.quality": 6,
    "gpt3mix_hf.measurements": 6,
    # The augmenter's floors are ordered too: a module of one floor importing another of it is a cycle waiting.
    "gpt3mix_hf.augment_run": 7,
    "gpt3mix_hf.augmenter": 8,
    "gpt3mix_hf.provenance": 9,
    "gpt3mix_hf.regeneration": 10,
    "gpt3mix_hf.hub": 11,
    "gpt3mix_hf.training": 12,
    "gpt3mix_hf.experiment": 13,
    "gpt3mix_hf.cli": 14,
}
# The package's __init__ re-exports the public names: it may import anything, and nothing imports it.
TOP = "gpt3mix_hf"

# Attributes with a leading underscore that are public API (namedtuple's methods): not a private name.
PUBLIC_UNDERSCORE_ATTRIBUTES = {"_asdict", "_replace", "_fields", "_field_defaults", "_make"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth, except those under `if TYPE_CHECKING:`."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if isinstance(node, ast.If) and is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return sorted(found, key=lambda node: node.lineno)


def imported(module: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[tuple[str, str]]:
    """(target module, name) pairs of one import statement: `name` is what `from target import name` names, or ""
    for `import target`. `from package import submodule` has the submodule as its target."""
    if isinstance(node, ast.Import):
        return [(alias.name, "") for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, node.module] if node.module else parts)
    pairs = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        pairs.append((submodule, alias.name) if submodule in known else (base, alias.name))
    return pairs


def floor_of(module: str) -> float | None:
    if module == TOP:
        return math.inf
    entries = [entry for entry in FLOORS if module == entry or module.startswith(entry + ".")]
    return FLOORS[max(entries, key=len)] if entries else None


def package_imports() -> list[tuple[str, str, int, str, str]]:
    """(importer, file:line, line number, target, name) for every import of a gpt3mix_hf module by another."""
    modules = package_modules()
    known = set(modules)
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in import_nodes(tree):
            for target, name in imported(module, path, node, known):
                if target == TOP or target.startswith(TOP + "."):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    edges.append((module, where, node.lineno, target, name))
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_floor():
    missing = [module for module in package_modules() if floor_of(module) is None]
    if missing:
        pytest.fail(
            f"Modules without a floor: {missing}. Add each to FLOORS in tests/test_layout.py, on the floor of the "
            "pipeline step it belongs to."
        )


def test_no_import_cycle():
    known = set(package_modules())
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], list[str]] = {}
    for importer, place, _, target, _ in package_imports():
        if target in known and target != importer:
            graph.setdefault(importer, set()).add(target)
            where.setdefault((importer, target), []).append(place)
    problems = []
    for component in cycles(graph):
        members = set(component)
        lines = [
            f"    {place}: {importer} imports {target}"
            for (importer, target), places in sorted(where.items())
            if importer in members and target in members
            for place in sorted(set(places), key=places.index)
        ]
        problems.append(f"  cycle among {component}:\n" + "\n".join(lines))
    if problems:
        pytest.fail("Import cycles (cut each by moving what both need to a lower module):\n" + "\n".join(problems))


def test_imports_run_down_the_floors():
    upward = []
    for importer, place, _, target, _ in package_imports():
        low, high = floor_of(importer), floor_of(target)
        line = f"    {place}: {importer} (floor {low}) imports {target} (floor {high})"
        if low is not None and high is not None and high > low and line not in upward:
            upward.append(line)
    if upward:
        pytest.fail("Imports that run up a floor (see FLOORS in tests/test_layout.py):\n" + "\n".join(upward))


def test_no_module_over_the_line_limit():
    long = []
    for path in package_modules().values():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            long.append(f"    {path.relative_to(ROOT)}: {lines} lines")
    if long:
        pytest.fail(f"Modules over {MAX_LINES} lines (split by concept):\n" + "\n".join(long))


def test_no_private_name_is_imported_from_another_module():
    private = [
        f"    {place}: {importer} imports {name} from {target}"
        for importer, place, _, target, name in package_imports()
        if is_private(name)
    ]
    if private:
        pytest.fail("Private names imported across modules (make them public, or move the code):\n"
                    + "\n".join(private))


def script_private_uses(path: Path) -> list[str]:
    """Private names of gpt3mix_hf a script imports or reads.

    An approximation, since a script's variables are not typed: every `x._name` attribute is flagged unless the
    chain starts at a name the script imported from outside gpt3mix_hf (`sys._getframe`, `torch._dynamo`), or
    `_name` is namedtuple API (`row._asdict()`). So `augmenter._prompt(...)` is flagged, and so would be a
    private attribute of a third-party object held in a variable (`model._modules`): scripts read neither.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    outside: set[str] = set()
    found = []
    for node in import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == TOP:
                    if any(is_private(part) for part in alias.name.split(".")):
                        found.append(f"    scripts/{path.name}:{node.lineno}: import {alias.name}")
                else:
                    outside.add(alias.asname or alias.name.split(".")[0])
        elif (node.module or "").split(".")[0] == TOP and not node.level:
            for alias in node.names:
                if is_private(alias.name) or any(is_private(part) for part in node.module.split(".")):
                    found.append(f"    scripts/{path.name}:{node.lineno}: from {node.module} import {alias.name}")
        else:
            outside.update(alias.asname or alias.name for alias in node.names)
    for node in sorted(ast.walk(tree), key=lambda node: (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))):
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        if node.attr in PUBLIC_UNDERSCORE_ATTRIBUTES:
            continue
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id in outside:
            continue
        found.append(f"    scripts/{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_scripts_use_the_public_api_only():
    found = [line for path in sorted((ROOT / "scripts").glob("*.py")) for line in script_private_uses(path)]
    if found:
        pytest.fail(
            "Scripts that import or read private names of gpt3mix_hf (make what they need public, or drop it):\n"
            + "\n".join(found)
        )


def test_the_checks_catch_what_they_look_for(tmp_path):
    # The helpers on a made-up module: a relative import resolved, a TYPE_CHECKING import ignored, a lazy one kept.
    source = (
        "from typing import TYPE_CHECKING\n"
        "from ..spec import TaskSpec, _private\n"
        "if TYPE_CHECKING:\n"
        "    from gpt3mix_hf.cli import main\n"
        "def later():\n"
        "    from gpt3mix_hf.hub import push\n"
    )
    path = tmp_path / "gpt3mix_hf" / "backends" / "x.py"
    known = {"gpt3mix_hf.spec", "gpt3mix_hf.hub", "gpt3mix_hf.hub.push"}
    pairs = [pair for node in import_nodes(ast.parse(source))
             for pair in imported("gpt3mix_hf.backends.x", path, node, known)]
    assert pairs == [("typing", "TYPE_CHECKING"), ("gpt3mix_hf.spec", "TaskSpec"), ("gpt3mix_hf.spec", "_private"),
                     ("gpt3mix_hf.hub.push", "push")]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert floor_of("gpt3mix_hf.backends.local.transformers") == 5 and floor_of("gpt3mix_hf.nowhere") is None
    script = tmp_path / "s.py"
    script.write_text("import sys\nfrom gpt3mix_hf import GPT3MixAugmenter\nfrom gpt3mix_hf.data import _x\n"
                      "a = GPT3MixAugmenter()\na._prompt()\nsys._getframe()\nrow._asdict()\n")
    assert script_private_uses(script) == ["    scripts/s.py:3: from gpt3mix_hf.data import _x",
                                           "    scripts/s.py:5: a._prompt"]


def test_the_sub_packages_export_what_the_package_exports():
    import gpt3mix_hf
    from gpt3mix_hf import hub, training

    for package in (training, hub):
        assert package.__all__, package.__name__
        for name in package.__all__:
            assert getattr(package, name) is getattr(gpt3mix_hf, name), name
