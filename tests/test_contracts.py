"""Architecture contracts: one-way imports, and a serving path that never needs torch."""

import ast
import pkgutil
import subprocess
import sys
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


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_model_never_imports_service():
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imported_names(path) if n.split(".")[0] == "service")
        for path in (ROOT / "model").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_serving_modules_import_without_torch():
    serving = [m for m in _modules(service) + _modules(model) if m not in model.TORCH_MODULES]
    assert "service.main" in serving and "model.funsd" in serving
    code = NO_TORCH_PRELUDE + "".join(f"import {name}\n" for name in serving) + "print('imported')"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_the_torch_guard_really_blocks_torch():
    code = NO_TORCH_PRELUDE + "import torch"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "must not be imported" in result.stderr


def test_torch_modules_exist():
    listed = set(_modules(model))
    assert listed >= model.TORCH_MODULES


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
