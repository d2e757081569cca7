"""The package layout: every room imports only rooms on lower floors (``docs/development.md#the-house``), no module
import circle, no arrow from ``models/`` or ``data/`` up into a stage or the demo, and small modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lit_videor2"
BENCH = PACKAGE.parent / "bench"
#: Packages a product module (``models/``, ``data/``) must never import: the stages and the demo fixtures.
UPWARD = ("lit_videor2.modules", "lit_videor2.evaluation", "lit_videor2.demo")
#: The rooms of the package (a subpackage or a top-level module), floor by floor: a room imports only rooms on lower
#: floors. Kept in step with ``docs/development.md#the-house``; a new room must be placed here.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("errors", "console", "text", "problem_types", "losses"),
    ("models", "judges"),
    ("data", "distributed", "checkpoints", "rewards", "metrics"),
    ("benchmarks", "rollout", "evaluation", "export"),
    ("modules", "demo", "report", "view", "ask"),
    ("cli",),
    ("__main__",),
)
#: The longest a module may grow (the aim is ~400 lines: one job per module).
MAX_LINES = 450
#: Modules still over the limit, each capped at its size when the limit was set: they may shrink, never grow.
#: Remove an entry once its module is split (the test says so).
OVER_LIMIT = {"lit_videor2/text.py": 478}


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``source`` (the text of ``module``), at any depth.

    Relative imports are resolved against ``module``'s package; ``from pkg import sub`` also yields ``pkg.sub``.
    """
    package = module.split(".")[:-1]  # a package's ``__init__`` is named ``pkg.__init__``: same package
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _python_files(*subpackages: str) -> list[Path]:
    roots = [PACKAGE / s for s in subpackages] if subpackages else [PACKAGE]
    return sorted(p for root in roots for p in root.rglob("*.py"))


def test_imported_modules_sees_every_form_of_import():
    """The checker sees top-level, function-level, relative and ``from package import sub`` imports."""
    source = (
        "import os\nfrom ..modules import grpo\nfrom . import records\n"
        "def f():\n    from lit_videor2.demo.tiny import build_tiny_model\n"
        "from lit_videor2 import evaluation\n"
    )
    names = {name for _, name in imported_modules(source, "lit_videor2.data.probe")}
    assert {"os", "lit_videor2.modules.grpo", "lit_videor2.data.records", "lit_videor2.demo.tiny"} <= names
    assert "lit_videor2.evaluation" in names
    inits = {name for _, name in imported_modules("from .schema import X", "lit_videor2.data.__init__")}
    assert "lit_videor2.data.schema" in inits


@pytest.mark.parametrize("subpackage", ["models", "data"])
def test_product_packages_do_not_import_stages_or_demo(subpackage):
    files = _python_files(subpackage)
    assert files, f"no modules found under {PACKAGE / subpackage}"
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in files
        for line, name in imported_modules(path.read_text(encoding="utf-8"), _module_name(path))
        if any(name == up or name.startswith(up + ".") for up in UPWARD)
    ]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_module_is_too_long():
    sizes = {
        path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in _python_files()
    }
    long = {name: n for name, n in sizes.items() if n > OVER_LIMIT.get(name, MAX_LINES)}
    assert not long, f"modules over {MAX_LINES} lines (split them by job; caps in OVER_LIMIT): {long}"
    fixed = sorted(name for name in OVER_LIMIT if sizes.get(name, 0) <= MAX_LINES)
    assert not fixed, f"{fixed} are within {MAX_LINES} lines now (or gone): remove them from OVER_LIMIT"


def _room(module: str) -> str | None:
    """The room of a ``lit_videor2`` module name (``lit_videor2.data.probe`` -> ``data``), None outside the package."""
    parts = module.split(".")
    if parts[0] != "lit_videor2" or len(parts) < 2:
        return None
    return parts[1] if (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file() else None


def test_every_room_is_on_a_floor():
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    rooms |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    placed = [room for floor in FLOORS for room in floor]
    assert len(placed) == len(set(placed)), f"a room is on two floors: {placed}"
    assert rooms == set(placed), (
        f"rooms not on a floor: {sorted(rooms - set(placed))}; gone: {sorted(set(placed) - rooms)}"
    )


def test_rooms_import_only_lower_floors():
    floor = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
    bad = []
    for path in _python_files():
        module = _module_name(path)
        here = _room(module)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), module):
            there = _room(name)
            if here and there and there != here and floor[there] >= floor[here]:
                bad.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line} ({here}, floor {floor[here]}) imports {name} "
                    f"({there}, floor {floor[there]})"
                )
    assert not bad, "imports that are not downward:\n" + "\n".join(bad)


def test_no_module_import_circle():
    """No circle among the package's modules, counting imports inside functions (which only hide one)."""
    modules = {_module_name(p): p for p in _python_files()}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        names = {name for _, name in imported_modules(path.read_text(encoding="utf-8"), module)}
        graph[module] = {n for n in names if n in modules and n != module and not n.endswith(".__init__")}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [*path, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            circle = visit(module, [module])
            assert circle is None, "import circle: " + " -> ".join(circle)


def test_bench_imports_only_the_package():
    """Timing scripts import the package (and each other), never the tests: a shared helper lives in ``bench/``."""
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in sorted(BENCH.glob("*.py"))
        for line, name in imported_modules(path.read_text(encoding="utf-8"), f"bench.{path.stem}")
        if name == "tests" or name.startswith("tests.")
    ]
    assert not bad, "bench/ imports tests/:\n" + "\n".join(bad)


#: Classes that checkpoints pickle (the modules' and the data module's hyper-parameters), at the paths pickles name:
#: old checkpoints load only while these resolve (a class that moves leaves a re-export behind).
PICKLED = {
    "lit_videor2.models.policy": ("PolicySpec", "LoraSpec"),
    "lit_videor2.rollout.engine": ("GenerationSettings",),
    "lit_videor2.modules.grpo": ("RolloutConfig",),
    "lit_videor2.data.sampling": ("FrameSampling",),
    "lit_videor2.data.frames": ("Overlay",),
    "lit_videor2.data.benchmark": ("Benchmark",),
}


@pytest.mark.parametrize("module", sorted(PICKLED))
def test_pickled_classes_resolve_at_their_old_paths(module):
    found = importlib.import_module(module)
    missing = [name for name in PICKLED[module] if not isinstance(getattr(found, name, None), type)]
    assert not missing, f"{module} no longer has {missing}: checkpoints that pickled them would not load"


def test_the_house_in_the_docs_is_the_one_tested():
    """``docs/development.md#the-house`` lists the rooms on the floors of :data:`FLOORS`."""
    import re

    text = (PACKAGE.parent / "docs" / "development.md").read_text(encoding="utf-8")
    documented: dict[int, set[str]] = {}
    for floor, rooms in re.findall(r"^\| (\d+) \| ([^|]+) \|", text, flags=re.M):
        documented.setdefault(int(floor), set()).update(re.findall(r"`([\w]+)`", rooms))
    assert documented == {i: set(rooms) for i, rooms in enumerate(FLOORS)}
