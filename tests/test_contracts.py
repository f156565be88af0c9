"""Architecture contracts: one-way imports, and a serving path that never needs torch."""

import ast
import pkgutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import model
import service

ROOT = Path(__file__).resolve().parent.parent

# Importing torch (or anything below it) raises in the child interpreter.
NO_TORCH_PRELUDE = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch must not be imported on the serving path: " + name)
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def _modules(package) -> list[str]:
    names = (m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."))
    return sorted(name for name in names if not name.endswith(".__main__"))


def _imported_names(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules `path` imports (absolute imports), anywhere in it or at module level only."""
    names: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = _run_at_import(tree.body) if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _run_at_import(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """The import statements among `nodes` that run when the module is imported: not those inside functions,
    nor under `if TYPE_CHECKING:` (read by type checkers only)."""
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        else:
            yield from _run_at_import(ast.iter_child_nodes(node))


def test_model_never_imports_service():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imported_names(path) if n.split(".")[0] == "service")
        for path in (ROOT / "model").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def in_torch_folder(name: str) -> bool:
    return any(name == folder or name.startswith(folder + ".") for folder in model.TORCH_PACKAGES)


def test_serving_modules_import_without_torch():
    """Every module outside the torch folders imports with torch blocked."""
    serving = [m for m in _modules(service) + _modules(model) if not in_torch_folder(m)]
    assert "service.main" in serving and "model.funsd" in serving and "service.jobs.worker" in serving
    code = NO_TORCH_PRELUDE + "".join(f"import {name}\n" for name in serving) + "print('imported')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_no_module_outside_the_torch_folders_imports_torch():
    """Not even inside a function: code that needs torch calls into `model.nn`, `model.train` or
    `model.pretrain`."""
    offenders = {}
    for folder in ("service", "model"):
        for path in (ROOT / folder).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            torch = sorted(n for n in _imported_names(path) if n.split(".")[0] == "torch")
            if torch and not in_torch_folder(name):
                offenders[name] = torch
    assert offenders == {}


def test_the_served_app_loads_nothing_from_the_torch_folders():
    """The API process and a queue worker, built as they run: no module of `nn/`, `train/` or `pretrain/`
    (and no torch) is loaded."""
    code = NO_TORCH_PRELUDE + (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "from service.main import create_app\n"
        "from service.deps import build_services\n"
        "from service.settings import Settings\n"
        "settings = Settings(data_dir=Path(tempfile.mkdtemp()) / 'data')\n"
        "create_app(settings)\n"
        "build_services(settings)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
        "[['model', 'nn'], ['model', 'train'], ['model', 'pretrain']] or m == 'torch'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_torch_guard_really_blocks_torch():
    code = NO_TORCH_PRELUDE + "import torch"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "must not be imported" in result.stderr


def test_the_torch_folders_exist():
    listed = set(_modules(model))
    assert set(model.TORCH_PACKAGES) <= listed
    assert {"model.nn.network", "model.train.trainer", "model.pretrain.loop"} <= listed


def import_graph() -> dict[str, set[str]]:
    """Each module of `service` and `model` -> the project modules it imports when it is imported."""
    graph = {}
    for folder in ("service", "model"):
        for path in (ROOT / folder).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            imported = _imported_names(path, top_level_only=True)
            graph[name] = {n for n in imported if n.split(".")[0] in ("service", "model")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (depth first), or None."""
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done or node not in graph:
            return None
        done.add(node)
        return next((c for target in sorted(graph[node]) if (c := visit(target, [*stack, node]))), None)

    return next((c for name in sorted(graph) if (c := visit(name, []))), None)


def test_no_import_circles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    graph = import_graph()
    assert "service.jobs.worker" in graph["service.deps"]
    assert find_cycle(graph) is None


def _unsafe_loads(path: Path) -> list[str]:
    """Calls that can run code from a file: `torch.load` without `weights_only=True`, `pickle`/`dill`
    loads, `numpy.load(allow_pickle=True)`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else ""
        keywords = {k.arg: k.value for k in node.keywords}
        call = f"{path}:{node.lineno} {owner}.{node.func.attr}"
        safe_torch = isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value
        unsafe = (
            (owner == "torch" and node.func.attr == "load" and not safe_torch)
            or (owner in ("pickle", "dill", "joblib") and node.func.attr in ("load", "loads"))
            or (owner in ("np", "numpy") and node.func.attr == "load" and "allow_pickle" in keywords)
        )
        if unsafe:
            found.append(call)
    return found


def test_model_files_are_loaded_with_safe_loaders_only(tmp_path: Path):
    files = [p for folder in ("model", "service", "benchmarks") for p in (ROOT / folder).rglob("*.py")]
    assert files
    assert [call for path in sorted(files) for call in _unsafe_loads(path)] == []
    sample = tmp_path / "sample.py"  # the check finds what it is meant to find
    sample.write_text(
        "torch.load(f)\ntorch.load(f, weights_only=False)\ntorch.load(f, weights_only=True)\n"
        "pickle.loads(b)\nnp.load(f, allow_pickle=True)\nnp.load(f)\n"
    )
    assert [call.split(" ")[0].rsplit(":", 1)[1] for call in _unsafe_loads(sample)] == ["1", "2", "4", "5"]


def test_the_python_client_imports_nothing_from_the_service_or_the_model():
    """`docextract_client` stands alone: the standard library, httpx and pydantic, and itself."""
    files = sorted((ROOT / "docextract_client").rglob("*.py"))
    assert files
    imported = {name.split(".")[0] for path in files for name in _imported_names(path)}
    outside = imported - set(sys.stdlib_module_names) - {"httpx", "pydantic", "docextract_client"}
    assert outside == set()
    code = (
        "import sys, docextract_client\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'service', 'model'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
