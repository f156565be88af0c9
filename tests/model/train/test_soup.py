import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from model.artifact import WEIGHTS_FILE, ArtifactMeta
from model.config import FUNSD_ENTITY_LABELS, LabelSet, tiny_config
from model.features import load_tokenizer, vocab_sha256
from model.funsd import read_dataset
from model.nn.network import EntityTagger
from model.train.checkpoint import load_model, save_model
from model.train.minilm import minilm_tokenizer_path
from model.train.soup import SoupError, average_models
from model.train.trainer import TrainOptions, prepare_trainer

TOKENIZER = minilm_tokenizer_path()


def base_meta() -> ArtifactMeta:
    labels = LabelSet(FUNSD_ENTITY_LABELS)
    return ArtifactMeta(
        tiny_config(), labels, vocab_sha256(load_tokenizer(TOKENIZER)), training={"init": "start"}
    )


def saved_model(directory: Path, seed: int, meta: ArtifactMeta | None = None) -> Path:
    meta = meta or base_meta()
    torch.manual_seed(seed)
    return save_model(EntityTagger(meta.config, meta.label_set.num_tags), meta, TOKENIZER, directory)


def test_the_soup_is_the_element_wise_mean_and_loads_as_a_model(tmp_path: Path):
    first, second = saved_model(tmp_path / "a", 1), saved_model(tmp_path / "b", 2)
    out = average_models([first, second], tmp_path / "soup")
    weights = [load_file(str(d / WEIGHTS_FILE)) for d in (first, second, out)]
    for name, tensor in weights[2].items():
        torch.testing.assert_close(tensor, (weights[0][name] + weights[1][name]) / 2, msg=name)
    model, meta = load_model(out)
    assert meta.training["soup_of"] == [str(first), str(second)]
    assert meta.training["init"] == "start"
    assert meta.label_set == base_meta().label_set
    loaded = model.state_dict()
    for name, tensor in weights[2].items():
        assert torch.equal(loaded[name], tensor), name


def test_averaging_copies_of_one_model_gives_that_model_back(tmp_path: Path):
    first, second = saved_model(tmp_path / "a", 3), saved_model(tmp_path / "b", 3)
    out = average_models([first, second], tmp_path / "soup")
    original, soup = load_file(str(first / WEIGHTS_FILE)), load_file(str(out / WEIGHTS_FILE))
    assert original.keys() == soup.keys()
    for name in original:
        assert torch.equal(original[name], soup[name]), name


def test_models_from_different_starting_points_are_refused(tmp_path: Path):
    first = saved_model(tmp_path / "a", 1)
    second = saved_model(tmp_path / "b", 2, replace(base_meta(), training={"init": "elsewhere"}))
    with pytest.raises(SoupError, match="one starting point"):
        average_models([first, second], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_models_with_different_label_sets_are_refused(tmp_path: Path):
    first = saved_model(tmp_path / "a", 1)
    second = saved_model(tmp_path / "b", 2, replace(base_meta(), label_set=LabelSet(("total", "date"))))
    with pytest.raises(SoupError, match="label set"):
        average_models([first, second], tmp_path / "soup")


@pytest.mark.parametrize("count", [1, 2])
def test_fewer_than_two_distinct_models_are_refused(tmp_path: Path, count: int):
    first = saved_model(tmp_path / "a", 1)
    with pytest.raises(SoupError):
        average_models([first] * count, tmp_path / "soup")


def test_one_start_named_by_a_relative_and_an_absolute_path_is_one_start(tmp_path: Path, monkeypatch):
    start = tmp_path / "pretrained"
    start.mkdir()
    monkeypatch.chdir(tmp_path)
    first = saved_model(tmp_path / "a", 1, replace(base_meta(), training={"init": "pretrained"}))
    second = saved_model(tmp_path / "b", 2, replace(base_meta(), training={"init": str(start)}))
    assert (average_models([first, second], tmp_path / "soup") / "config.json").is_file()


def _trained(out: Path, documents: list, seed: int, split_seed: int | None = None) -> Path:
    options = TrainOptions(
        epochs=3, batch_size=1, lr=5e-3, lr_new=5e-3, validation_fraction=0.5, init="random", seed=seed
    )
    options = replace(options, split_seed=split_seed)
    config = tiny_config().with_changes(hidden_dropout=0.0, attention_dropout=0.0)
    prepare_trainer(documents, out, options, config, TOKENIZER).run()
    return out / "best"


def test_with_the_training_data_the_soup_is_scored_on_the_ingredients_validation_split(
    tmp_path: Path, synthetic_dataset: Path
):
    documents = read_dataset(synthetic_dataset)[:4]
    trained = _trained(tmp_path / "run", documents, seed=42)
    copy = shutil.copytree(trained, tmp_path / "copy")
    # the average of a model and its copy is that model: its validation scores are the ones training recorded
    out = average_models([trained, copy], tmp_path / "soup", data=documents)
    recorded, scored = ArtifactMeta.load(trained).metrics, ArtifactMeta.load(out).metrics
    scores = {"validation_entity_f1", "validation_relation_f1"}
    assert set(scored) == scores | {"validation_documents", "validation_warning"} == set(recorded)
    assert scored["validation_documents"] == recorded["validation_documents"] == 2  # of 4 forms
    assert (
        0 < recorded["validation_entity_f1"] < 1
    )  # a model that is partly right: the scores are informative
    for name, value in recorded.items():
        assert scored[name] == pytest.approx(value), name


def test_models_that_held_out_different_forms_cannot_be_scored_on_a_validation_split(
    tmp_path: Path, synthetic_dataset: Path
):
    documents = read_dataset(synthetic_dataset)[:4]
    split = {"init": "s", "validation_fraction": 0.5}
    first = saved_model(tmp_path / "a", 1, replace(base_meta(), training=split | {"seed": 42}))
    second = saved_model(tmp_path / "b", 2, replace(base_meta(), training=split | {"seed": 43}))
    with pytest.raises(SoupError, match="do not share a validation split"):
        average_models([first, second], tmp_path / "soup", data=documents)
    assert average_models([first, second], tmp_path / "soup").is_dir()  # without data: averaged, not scored


def test_runs_with_different_seeds_and_one_split_seed_are_scored_on_their_shared_split(
    tmp_path: Path, synthetic_dataset: Path
):
    documents = read_dataset(synthetic_dataset)[:4]
    first = _trained(tmp_path / "a", documents, seed=1, split_seed=7)
    second = _trained(tmp_path / "b", documents, seed=2, split_seed=7)
    out = average_models([first, second], tmp_path / "soup", data=documents)
    metrics = ArtifactMeta.load(out).metrics
    scores = {"validation_entity_f1", "validation_relation_f1"}
    assert set(metrics) == scores | {"validation_documents", "validation_warning"}
    assert all(0 <= metrics[name] <= 1 for name in scores) and metrics["validation_documents"] == 2
    assert (
        ArtifactMeta.load(first).training["split_seed"]
        == ArtifactMeta.load(second).training["split_seed"]
        == 7
    )
