"""Layers point down only: no import cycle anywhere in cotforge, lazy imports inside functions included."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cotforge

PACKAGE = Path(cotforge.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """module -> the cotforge modules it imports (importing a.b.c runs a and a.b too)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" for a in node.names]
                targets |= {n for n in names if n in modules} or {node.module}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        edges = set()
        for target in targets:
            parts = target.split(".")
            edges |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}
        graph[name] = {t for t in edges if t in modules and t != name and not name.startswith(t + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_low_layers_import_nothing_above_them() -> None:
    graph = _import_graph()
    allowed = {
        "cotforge.safety": {"cotforge.safety"},
        "cotforge.answers": {"cotforge.answers"},
        "cotforge.schemas": {"cotforge.answers", "cotforge.safety", "cotforge.schemas"},
    }
    for module, imports in graph.items():
        for layer, may_use in allowed.items():
            if module.startswith(layer):
                above = {i for i in imports if not any(i == m or i.startswith(m + ".") for m in may_use)}
                assert above == set(), f"{module} imports {above}"


def _names_imported_from(module: str, path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(module):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.Import) and any(a.name.startswith(module) for a in node.names):
            names.add(module)
    return names


def test_nothing_imports_the_command_line() -> None:
    """The CLI is a leaf: library code and benchmarks reach the library (cotforge.api), never the CLI; tests take
    from it only the commands they drive (and the display they check)."""
    graph = _import_graph()
    users = {m for m, imports in graph.items() if any(i.startswith("cotforge.cli") for i in imports)}
    assert {m for m in users if not m.startswith("cotforge.cli")} == {"cotforge.entry"}
    root = PACKAGE.parent
    for path in (root / "benchmarks").glob("*.py"):
        assert _names_imported_from("cotforge.cli", path) == set(), path
    for path in (root / "tests").glob("*.py"):
        assert _names_imported_from("cotforge.cli", path) <= {"app", "make_app", "BuildDisplay"}, path


def test_the_api_is_the_top() -> None:
    """Only the package's own __init__ and the CLI import the public API module."""
    graph = _import_graph()
    users = {m for m, imports in graph.items() if "cotforge.api" in imports}
    assert {m for m in users if not m.startswith("cotforge.cli")} <= {"cotforge"}


def test_the_on_disk_contracts_are_low() -> None:
    """corpus/ (the build and student directories) stands on schemas, the recipe parser and safety/ only."""
    graph = _import_graph()
    may_use = ("cotforge.corpus", "cotforge.schemas", "cotforge.answers", "cotforge.recipes.loader", "cotforge.safety")
    for module, imports in graph.items():
        if module.startswith("cotforge.corpus"):
            above = {i for i in imports if i != "cotforge.recipes" and not i.startswith(may_use)}
            assert above == set(), f"{module} imports {above}"


def test_suitability_stands_above_the_trainer_and_below_the_sweep() -> None:
    """cotforge.suitability (`cotforge score`) is made of the trainer's pieces: it imports train/ and what is below,
    never the sweep, the API or the CLI; those may use it, nothing lower does."""
    graph = _import_graph()
    assert "cotforge.train.loss" in graph["cotforge.suitability.tokens"], "the trainer's chunked output layer"
    above = ("cotforge.api", "cotforge.cli", "cotforge.sweeps", "cotforge.entry")
    for module, imports in graph.items():
        if module.startswith("cotforge.suitability"):
            assert {i for i in imports if i.startswith(above)} == set(), module
        elif any(i.startswith("cotforge.suitability") for i in imports):
            assert module.startswith(above), f"{module} imports cotforge.suitability"


def test_builtin_dataset_names_match_the_loaders() -> None:
    from cotforge.recipes.sources import BUILTIN_SOURCES
    from cotforge.schemas.recipe import BUILTIN_DATASETS

    assert tuple(BUILTIN_SOURCES) == BUILTIN_DATASETS


# The only modules that may hold SQL, each the owner of one database; every other module asks them (the viewer
# reads the store through store_queries' typed functions). A new owner is a new database, named here.
SQL_OWNERS = {
    "cotforge/builders/store.py": "store.sqlite: its tables and the build's writes and reads",
    "cotforge/builders/store_queries.py": "store.sqlite: the read-only queries of the viewer and of salvage",
    "cotforge/judging/store.py": "judge.sqlite: the judge's verdicts, its own table",
    "cotforge/quality/duplicates.py": "a private temporary index of near-duplicates, deleted on close",
}
_SQL = re.compile(r"\b(?:SELECT|INSERT|UPDATE \w+ SET|DELETE FROM|CREATE (?:TABLE|INDEX|TRIGGER)|PRAGMA)\b")
_SQL_CALLS = {"execute", "executemany", "executescript"}


def _sql_in(source: str) -> list[str]:
    """The SQL a module's code holds: string constants that read as SQL, and calls of a connection's execute."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.search(node.value):
            found.append(node.value[:60])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SQL_CALLS:
            found.append(f".{node.func.attr}(")
    return found


def test_sql_finder_finds_queries_and_calls() -> None:
    assert _sql_in('db.execute(f"SELECT {x} FROM answers")') == [".execute(", "SELECT "]
    assert _sql_in('CREATE = "CREATE TABLE t (a)"') == ["CREATE TABLE t (a)"]
    assert _sql_in('"""Select the answers, then update them."""\nrun(x)') == []


def test_only_the_owner_of_a_database_holds_sql() -> None:
    root = PACKAGE.parent
    holders = {
        str(path.relative_to(root)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := _sql_in(path.read_text(encoding="utf-8")))
    }
    assert {p: f for p, f in holders.items() if p not in SQL_OWNERS} == {}
    assert set(holders) == set(SQL_OWNERS), "an owner named here holds no SQL any more: take it out"


MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80  # a function's lines from its `def` (decorators apart) to its last, docstring included


def _long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """name -> lines of each function (or method, as Class.name) longer than `limit`."""
    found = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (child.end_lineno or child.lineno) - child.lineno + 1
                if lines > limit:
                    found[prefix + child.name] = lines
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(source), "")
    return found


def test_the_length_finder_counts_methods_and_nested_functions() -> None:
    body = "\n".join(f"        x = {i}" for i in range(3))
    source = f"class A:\n    def short(self):\n        pass\n\n    def long(self):\n{body}\n"
    assert _long_functions(source, limit=3) == {"A.long": 4}
    assert _long_functions(f"def f():\n    def g():\n{body}\n", limit=3) == {"f": 5, "f.g": 4}


def test_no_module_over_450_lines_and_no_function_over_80() -> None:
    root = PACKAGE.parent
    long_modules, long_functions = {}, {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(root))
        source = path.read_text(encoding="utf-8")
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES:
            long_modules[name] = lines
        long_functions |= {f"{name}:{function}": n for function, n in _long_functions(source).items()}
    assert long_modules == {}, "split these modules"
    assert long_functions == {}, "make these shorter"
