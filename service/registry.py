"""Models on disk: the registry (the built-in `default` model plus trained models under
`DATA_DIR/models/<id>/`) and the ONNX serving folders of model folders.

`serving_model_dir(settings, model)` finds the ONNX serving folder of a model folder (the bundled one by
default), exporting it once to `DATA_DIR/models/NAME-FINGERPRINT` when only the trained weights are there.

A registered model is an ONNX serving folder (see `model.onnx_meta`) with a `registry.json` beside it (id,
created, source training run); folders without it (e.g. those exported copies) are not models of the
registry. The active model's id is in `DATA_DIR/models/active.json`, replaced atomically by `activate`,
so every process sharing the data directory (API, workers) sees the same active model.

`use(model_id)` resolves the id once and hands out the loaded runtime; a request keeps that runtime to its
end, so activating or deleting a model never changes the model of a request already running. Runtimes are
loaded once per process and cached (the active model and the most recently used others).
"""

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.artifact import META_FILE, WEIGHTS_FILE
from model.bundled import bundled_model_dir
from model.onnx_meta import ONNX_META_FILE, OnnxMeta, graph_source_digest
from model.runtime import Runtime
from service.errors import ModelInUseError, ModelLoadError, ModelNotFoundError, NotReadyError
from service.settings import Settings
from service.store import now_iso, write_atomic
from service.threads import cpu_threads, python_child_environment

DEFAULT_ID = "default"
TRAINED_ID_FORM = r"mdl_[0-9a-f]{16}"  # a trained model's id: also its folder name under models/
TRAINED_ID = re.compile(f"^{TRAINED_ID_FORM}$")
MODEL_ID_PATTERN = f"^({DEFAULT_ID}|{TRAINED_ID_FORM})$"  # what the routes accept as a model id
ENTRY_FILE = "registry.json"
ACTIVE_FILE = "active.json"
CACHED_RUNTIMES = 3
log = logging.getLogger("docextract.registry")

Loader = Callable[[Path, Settings], Runtime]


def load_runtime(path: Path, settings: Settings) -> Runtime:
    threads = settings.model_threads or os.cpu_count() or 1
    return Runtime.load(path, settings.model_variant, threads, relation_threshold=settings.relation_threshold)


def model_fingerprint(model_dir: Path) -> str:
    """Short hash of a model folder's metadata and weights and of the code that exports them: names its
    exported copy, so an upgrade that changes the graph code exports again instead of reusing a stale copy."""
    digest = hashlib.sha256(graph_source_digest().encode())
    for name in (META_FILE, WEIGHTS_FILE):
        with (model_dir / name).open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:12]


def export_serving_folder(model_dir: Path, target: Path, threads: int) -> None:
    """Export a trained model folder to an ONNX serving folder (needs the `train` extra), atomically, in a
    child process with `threads` torch threads."""
    if importlib.util.find_spec("torch") is None:
        raise RuntimeError(
            f"{model_dir} holds trained weights only; exporting them to ONNX needs the train extra "
            "(torch, onnx): install it, or pass a folder exported with `docextract export`"
        )
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    # a child process: this (serving) process never imports torch
    command = [sys.executable, "-m", "model.train.export", str(model_dir), str(partial)]
    env = python_child_environment(threads)
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"exporting {model_dir} to ONNX failed: {done.stderr.strip()[-2000:]}")
    try:
        partial.rename(target)
    except OSError:  # another process finished the same export first
        shutil.rmtree(partial, ignore_errors=True)


def serving_model_dir(settings: Settings, model: Path | None = None) -> Path:
    """The ONNX serving folder of `model` (default: the bundled model).

    A folder with `onnx.json` is used as is. A trained model folder (`config.json`, `model.safetensors`)
    is exported once to `DATA_DIR/models/NAME-FINGERPRINT` and that copy is reused while the weights stay
    the same. FileNotFoundError when there is no model; RuntimeError when an export is needed but torch is
    not installed.
    """
    source = Path(model) if model is not None else bundled_model_dir()
    if (source / ONNX_META_FILE).is_file():
        return source
    if not (source / META_FILE).is_file() or not (source / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"{source} is not a model folder: it has neither onnx.json nor {META_FILE}")
    target = settings.data_dir / "models" / f"{source.resolve().name}-{model_fingerprint(source)}"
    if not (target / ONNX_META_FILE).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        log.info("exporting the model in %s to ONNX (once; later starts reuse %s)", source, target)
        started = time.monotonic()
        export_serving_folder(source, target, cpu_threads(settings.train_threads))
        log.info("exported the model to %s in %.1f s", target, time.monotonic() - started)
    return target


def default_model_path(settings: Settings) -> Path:
    """The serving folder of the `default` model (may export the bundled weights once)."""
    return serving_model_dir(settings, settings.default_model_dir)


def model_id_of_run(run_id: str) -> str:
    """The id of the model a training run registers: derived from the run, so a retry cannot add another."""
    return f"mdl_{hashlib.sha256(run_id.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    path: Path
    labels: list[str]
    metrics: dict[str, Any]
    created: str
    source_run: str | None
    builtin: bool
    training: dict[str, Any] = field(default_factory=dict)


def read_entry(model_id: str, path: Path, builtin: bool) -> ModelEntry:
    artifact = OnnxMeta.load(path).artifact
    extra = json.loads((path / ENTRY_FILE).read_text(encoding="utf-8")) if not builtin else {}
    return ModelEntry(
        id=model_id,
        path=path,
        labels=list(artifact.label_set.labels),
        metrics=artifact.metrics,
        created=extra.get("created", artifact.created),
        source_run=extra.get("source_run"),
        builtin=builtin,
        training=artifact.training,
    )


class Registry:
    """Models of one data directory, and this process's loaded runtimes."""

    def __init__(self, settings: Settings, loader: Loader = load_runtime) -> None:
        self.settings = settings
        self.root = settings.data_dir / "models"
        self._loader = loader
        self._lock = threading.Lock()
        self._default_lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._runtimes: OrderedDict[str, Runtime] = OrderedDict()
        self._default_path: Path | None = None

    def _default(self) -> ModelEntry:
        with self._default_lock:  # the first call may export the bundled weights; others wait for it
            if self._default_path is None:
                try:
                    self._default_path = default_model_path(self.settings)
                except (FileNotFoundError, RuntimeError, ValueError) as exc:
                    raise NotReadyError(f"the default model is not available: {exc}") from exc
            return read_entry(DEFAULT_ID, self._default_path, builtin=True)

    def entry(self, model_id: str) -> ModelEntry:
        if model_id == DEFAULT_ID:
            return self._default()
        path = self.root / model_id
        if TRAINED_ID.match(model_id) is None or not (path / ENTRY_FILE).is_file():
            raise ModelNotFoundError(f"no model {model_id!r}; GET /v1/models lists them")
        return read_entry(model_id, path, builtin=False)

    def entries(self) -> list[ModelEntry]:
        """Every model: `default` first (when available), then trained ones by creation time."""
        found = []
        with contextlib.suppress(NotReadyError):
            found.append(self._default())
        paths = sorted(self.root.glob(f"mdl_*/{ENTRY_FILE}")) if self.root.is_dir() else []
        trained = []
        for marker in paths:
            if TRAINED_ID.match(marker.parent.name) is None:
                continue  # a foreign folder: not a model id the API could name
            try:
                trained.append(read_entry(marker.parent.name, marker.parent, builtin=False))
            except (OSError, ValueError):
                continue  # half-deleted or foreign folder
        return found + sorted(trained, key=lambda e: (e.created, e.id))

    def active_id(self) -> str:
        try:
            model_id = json.loads((self.root / ACTIVE_FILE).read_text(encoding="utf-8"))["id"]
        except (OSError, ValueError, KeyError, TypeError):
            return DEFAULT_ID
        return (
            model_id
            if model_id == DEFAULT_ID or (self.root / model_id / ENTRY_FILE).is_file()
            else DEFAULT_ID
        )

    def resolve(self, model_id: str | None) -> str:
        """The id a request will run on: the given one (checked) or the active one."""
        model_id = model_id or self.active_id()
        self.entry(model_id)
        return model_id

    def runtime(self, model_id: str) -> Runtime:
        """The loaded runtime of a model (loaded on first use, then cached). Loading one model never
        blocks requests on models already loaded."""
        with self._lock:
            if model_id in self._runtimes:
                self._runtimes.move_to_end(model_id)
                return self._runtimes[model_id]
            load_lock = self._load_locks.setdefault(model_id, threading.Lock())
        with load_lock:
            with self._lock:
                if model_id in self._runtimes:
                    return self._runtimes[model_id]
            entry = self.entry(model_id)
            try:
                runtime = self._loader(entry.path, self.settings)
            except Exception as exc:  # onnxruntime raises its own types for broken graphs
                reason = str(exc).replace(str(self.root), "models")  # no server paths in the reply
                raise ModelLoadError(f"model {model_id!r} cannot be loaded: {reason}") from exc
            runtime.model_id = entry.id  # type: ignore[attr-defined]  # the pipeline reports this id
            with self._lock:
                self._runtimes[model_id] = runtime
                self._evict()
        return runtime

    def _evict(self) -> None:
        keep = {self.active_id()}
        for model_id in list(self._runtimes):
            if len(self._runtimes) <= CACHED_RUNTIMES:
                break
            if model_id not in keep:
                del self._runtimes[model_id]  # requests holding it keep it alive until they end

    def use(self, model_id: str | None) -> Runtime:
        """The runtime a request runs on from start to end (resolved once, here)."""
        return self.runtime(self.resolve(model_id))

    def is_loaded(self) -> bool:
        return self.active_id() in self._runtimes

    def warm(self) -> bool:
        """Load the active model now; False (not an exception) when no model is available."""
        try:
            self.use(None)
        except (NotReadyError, ModelNotFoundError, ModelLoadError, OSError, ValueError, RuntimeError):
            return False
        return True

    def activate(self, model_id: str) -> ModelEntry:
        """Make a model the default of new requests: it is loaded first (a broken model is never
        activated), then the pointer file is swapped atomically."""
        entry = self.entry(model_id)
        self.runtime(model_id)
        write_atomic(self.root / ACTIVE_FILE, json.dumps({"id": model_id, "activated": now_iso()}).encode())
        return entry

    def delete(self, model_id: str) -> None:
        entry = self.entry(model_id)
        if entry.builtin:
            raise ModelInUseError("the built-in default model cannot be deleted")
        if self.active_id() == model_id:
            raise ModelInUseError(f"model {model_id!r} is active; activate another model first")
        with self._lock:
            self._runtimes.pop(model_id, None)
        doomed = self.root / f".deleted-{model_id}-{uuid.uuid4().hex[:8]}"
        (self.root / model_id).rename(doomed)  # atomic: the model is gone for every reader at once
        shutil.rmtree(doomed, ignore_errors=True)

    def model_of_run(self, run_id: str) -> str | None:
        """The model a training run registered, if it got that far (an attempt before a crash, say)."""
        model_id = model_id_of_run(run_id)
        return model_id if (self.root / model_id / ENTRY_FILE).is_file() else None

    def add(self, serving_dir: Path, source_run: str | None) -> str:
        """Register an exported serving folder (moved in, atomically); returns the model id. A training
        run registers one model however often it is retried: a second registration keeps the first."""
        if not (serving_dir / ONNX_META_FILE).is_file():
            raise ValueError(f"{serving_dir} is not an ONNX serving folder (no {ONNX_META_FILE})")
        OnnxMeta.load(serving_dir)
        model_id = model_id_of_run(source_run) if source_run else f"mdl_{uuid.uuid4().hex[:16]}"
        entry = {"id": model_id, "created": now_iso(), "source_run": source_run}
        (serving_dir / ENTRY_FILE).write_text(json.dumps(entry, indent=2), encoding="utf-8")
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            serving_dir.rename(self.root / model_id)
        except OSError:
            if not (self.root / model_id / ENTRY_FILE).is_file():
                raise
            shutil.rmtree(serving_dir, ignore_errors=True)  # the run's earlier attempt registered it
        return model_id
