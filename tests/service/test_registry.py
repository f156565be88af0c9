"""The model registry with a real tiny exported model: list, add, activate atomically, delete."""

import logging
import re
import shutil
from pathlib import Path

import pytest

from model.onnx_meta import ONNX_META_FILE
from model.runtime import PageWords
from service import registry as registry_module
from service.errors import ModelInUseError, ModelLoadError, ModelNotFoundError, NotReadyError
from service.registry import ACTIVE_FILE, DEFAULT_ID, Registry, serving_model_dir
from service.settings import Settings

PAGE = PageWords(
    words=["Name:", "Ann"], boxes_px=[(10, 10, 60, 30), (70, 10, 120, 30)], width=600, height=800
)


@pytest.fixture
def settings(tmp_path: Path, serving_model: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", default_model_dir=serving_model, model_threads=1)


def register_copy(registry: Registry, serving_model: Path, tmp_path: Path, run: str = "run_x") -> str:
    copy = shutil.copytree(serving_model, tmp_path / f"copy-{run}")
    return registry.add(copy, source_run=run)


def test_the_default_model_is_listed_active_and_loads(settings: Settings):
    registry = Registry(settings)
    assert [e.id for e in registry.entries()] == [DEFAULT_ID]
    entry = registry.entry(DEFAULT_ID)
    assert entry.builtin and entry.labels == ["answer", "header", "question"] and entry.source_run is None
    assert registry.active_id() == DEFAULT_ID and not registry.is_loaded()
    assert registry.warm() and registry.is_loaded()
    runtime = registry.use(None)
    assert runtime.model_id == DEFAULT_ID and runtime is registry.use(DEFAULT_ID)


def test_added_models_are_listed_with_their_source_run(
    settings: Settings, serving_model: Path, tmp_path: Path
):
    registry = Registry(settings)
    model_id = register_copy(registry, serving_model, tmp_path)
    assert model_id.startswith("mdl_") and not (tmp_path / "copy-run_x").exists()
    assert [e.id for e in registry.entries()] == [DEFAULT_ID, model_id]
    assert registry.entry(model_id).source_run == "run_x" and not registry.entry(model_id).builtin


def test_activate_swaps_new_requests_while_running_ones_keep_their_model(
    settings: Settings, serving_model: Path, tmp_path: Path
):
    registry = Registry(settings)
    model_id = register_copy(registry, serving_model, tmp_path)
    in_flight = registry.use(None)  # a request that started before the swap
    registry.activate(model_id)
    assert registry.active_id() == model_id
    assert Registry(settings).active_id() == model_id  # every process sharing the data dir sees it
    assert registry.use(None).model_id == model_id
    assert in_flight.model_id == DEFAULT_ID and in_flight.predict_pages([PAGE])[0].tags
    assert list(registry.root.glob("*.tmp")) == [] and (registry.root / ACTIVE_FILE).is_file()


def test_delete_refuses_the_builtin_and_the_active_model(
    settings: Settings, serving_model: Path, tmp_path: Path
):
    registry = Registry(settings)
    first = register_copy(registry, serving_model, tmp_path, "run_a")
    second = register_copy(registry, serving_model, tmp_path, "run_b")
    registry.activate(first)
    with pytest.raises(ModelInUseError, match="built-in"):
        registry.delete(DEFAULT_ID)
    with pytest.raises(ModelInUseError, match="active"):
        registry.delete(first)
    registry.delete(second)
    with pytest.raises(ModelNotFoundError):
        registry.entry(second)
    assert [e.id for e in registry.entries()] == [DEFAULT_ID, first]
    # an id is a name, never a path: the same folder spelt with ".." is not a model
    for spelling in (f"{first}/../{first}", f"{first}/.", f"{first}/"):
        with pytest.raises(ModelNotFoundError):
            registry.entry(spelling)


def test_unknown_ids_and_a_missing_default(tmp_path: Path):
    registry = Registry(Settings(data_dir=tmp_path, default_model_dir=tmp_path / "nothing"))
    with pytest.raises(ModelNotFoundError):
        registry.entry("mdl_0000000000000000")
    with pytest.raises(NotReadyError, match="default model is not available"):
        registry.use(None)
    assert not registry.warm() and registry.entries() == []


def test_a_broken_model_is_never_activated(settings: Settings, serving_model: Path, tmp_path: Path):
    registry = Registry(settings)
    model_id = register_copy(registry, serving_model, tmp_path)
    (registry.root / model_id / "model.int8.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        registry.activate(model_id)
    assert registry.active_id() == DEFAULT_ID


# --- serving folders of model folders ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_dir(exported_model) -> Path:
    """A trained model folder (config and weights, no ONNX), as `docextract train` saves it."""
    return exported_model.model_dir


def test_serving_dir_is_exported_once_and_reused(
    trained_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, train_threads=1)
    with caplog.at_level(logging.INFO, logger="docextract.registry"):
        serving_dir = serving_model_dir(settings, trained_dir)
        assert serving_dir.parent == data_dir / "models" and (serving_dir / ONNX_META_FILE).is_file()
        stamp = (serving_dir / ONNX_META_FILE).stat().st_mtime_ns
        assert serving_model_dir(settings, trained_dir) == serving_dir
        assert (serving_dir / ONNX_META_FILE).stat().st_mtime_ns == stamp
        assert serving_model_dir(settings, serving_dir) == serving_dir  # an ONNX folder is used as is
    # the export says when it starts and how long it took, once: the reuses say nothing
    messages = [r.getMessage() for r in caplog.records if r.name == "docextract.registry"]
    assert len(messages) == 2, messages
    assert messages[0].startswith(f"exporting the model in {trained_dir} to ONNX")
    assert re.fullmatch(rf"exported the model to {re.escape(str(serving_dir))} in \d+\.\d s", messages[1])


def test_new_graph_code_means_a_new_export_folder(trained_dir: Path, monkeypatch: pytest.MonkeyPatch):
    before = registry_module.model_fingerprint(trained_dir)
    monkeypatch.setattr(registry_module, "graph_source_digest", lambda: "other graph code")
    assert registry_module.model_fingerprint(trained_dir) != before


def test_serving_dir_of_a_folder_without_a_model(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        serving_model_dir(Settings(data_dir=tmp_path / "data"), tmp_path)
