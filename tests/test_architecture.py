"""The shape of the code: imports point down (no cycles, function-local imports included), the core
imports no plugin and no reader, and a run folder's file names are spelled in core/run.py alone.

Imports are read with ``ast`` from the source tree; an import under ``if TYPE_CHECKING:`` does not
count. ``from .train import checkpoint`` is an edge to ``core.train.checkpoint`` (a module), not to
the package ``core.train``; a package's own ``__init__`` is a node like any module.
"""
import ast
import re
from pathlib import Path

from helpers import ROOT

PACKAGES = {"core": "sigplex.core", "plugins": "sigplex.plugins", "datasets": "sigplex.datasets"}
#: top-level files and folders of a run directory (core/run.py names them)
RUN_FILES = ("run.json", "config.yaml", "summary.json", "best.json", "prepared.json", "prepared.safetensors",
             "card.json", "MODEL_CARD.md", "metrics.csv")


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the three packages."""
    found = {}
    for folder, dotted in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([dotted, *parts])] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return skip


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules ``name`` imports anywhere in its file (TYPE_CHECKING blocks excepted)."""
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_imports_no_plugin_and_no_reader():
    wrong = {(m, t) for m, targets in graph().items() if m.startswith("sigplex.core")
             for t in targets if t.startswith(("sigplex.plugins", "sigplex.datasets"))}
    assert wrong == set()


def test_plugins_do_not_import_each_other():
    def plugin(module):
        parts = module.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "plugins" else None

    wrong = {(m, t) for m, targets in graph().items() if plugin(m)
             for t in targets if plugin(t) and plugin(t) != plugin(m)}
    assert wrong == set()


def test_run_file_names_are_spelled_in_core_run_only():
    pattern = re.compile("|".join(re.escape(f'"{name}"') for name in RUN_FILES))
    spelled = [f"{path.relative_to(ROOT)}:{number}" for name, path in modules().items()
               if path != ROOT / "core" / "run.py"
               for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert spelled == []


def test_the_core_reads_a_task_directly():
    """Every member the core reads is declared on Task; only the compatibility module probes with getattr."""
    pattern = re.compile(r"getattr\((task|self\.task|predictor\.task|p\.task|task_obj|source)\b")
    probing = [f"{path.relative_to(ROOT)}:{number}" for name, path in modules().items()
               if name.startswith("sigplex.core") and path.name != "compat.py"
               for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert probing == []


def test_a_task_has_at_most_seven_required_members():
    """Required: a class attribute without a value, or a method that raises NotImplementedError by default."""
    import inspect

    from sigplex.core.task import Task

    required = [name for name, value in vars(Task).items() if not name.startswith("_") and value is None
                and name != "pretrained"]
    for name, member in vars(Task).items():
        if inspect.isfunction(member) and "raise NotImplementedError" in inspect.getsource(member):
            required.append(name)
    assert sorted(required) == sorted(["config_class", "build_data", "build_model", "training_step", "evaluate",
                                       "predict", "write_prediction"])


def test_files_stay_small():
    """A standing rule: no core file over 400 lines, no plugin task.py over 200."""
    too_long = [f"{path.relative_to(ROOT)}: {n}" for name, path in modules().items()
                if (n := len(path.read_text().splitlines())) > (200 if name.endswith(".task") and ".plugins." in name
                                                                else 400 if name.startswith("sigplex.core") else 10**9)]
    assert too_long == []
