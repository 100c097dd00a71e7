"""The house: no import circles in the package, and a library layer that never imports the application layer.

Every ``import`` and ``from ... import`` in every module counts, those inside functions included.
An import names a module (``from transferkit.methods import DANN`` names ``transferkit.methods``;
``from transferkit.methods import dann`` names ``transferkit.methods.dann``); the parent packages
Python runs on the way are not edges of their own, as in import-linter and pydeps.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "transferkit"
APPLICATION = ("transferkit.runs", "transferkit.protocols", "transferkit.cli", "transferkit.__main__")


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its body."""
    modules = _modules(root)
    graph = {}
    for name, (path, is_package) in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against the module's package
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join(package + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    deps.add(sub if sub in modules else base)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_application(module: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in APPLICATION)


def test_no_import_circles():
    found = cycles(import_graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_library_never_imports_the_application_layer():
    graph = import_graph()
    wrong = sorted(
        f"{module} imports {dep}"
        for module, deps in graph.items()
        if not _is_application(module)
        for dep in deps
        if _is_application(dep)
    )
    assert not wrong, wrong


def test_the_application_layer_exists_and_calls_the_run_layer():
    graph = import_graph()
    assert "transferkit.runs" in graph["transferkit.cli.run"]
    assert "transferkit.runs" in graph["transferkit.protocols.bench"]
    assert not any(d.startswith("transferkit.cli") for d in graph["transferkit.protocols.bench"])


@pytest.mark.parametrize(
    "modules, expected",
    [
        ({"a": "import pkg.b", "b": "def f():\n    from pkg import a"}, [["pkg.a", "pkg.b"]]),  # inside a function
        ({"a": "from . import b", "b": "from .c import x", "c": "from .a import y"}, [["pkg.a", "pkg.b", "pkg.c"]]),
        ({"a": "import pkg.b", "b": "import numpy"}, []),
    ],
)
def test_the_cycle_check_finds_circles(tmp_path, modules, expected):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, body in modules.items():
        (package / f"{name}.py").write_text(body + "\n")
    assert cycles(import_graph(package)) == expected
