import shutil
from pathlib import Path

import pytest

from model.artifact import WEIGHTS_FILE, InputOptions
from model.config import base_config, minilm_config, tiny_config
from model.train.minilm import minilm_tokenizer_path
from model.train.start import StartPoint, resolve_start
from model.train.trainer import TrainOptions
from tests.fixtures.models import untrained_model_folder

LINES_IN_ANNOTATION_ORDER = InputOptions(word_order="annotation", box_level="line", max_tokens=256)


def test_minilm_starts_with_its_config_tokenizer_and_the_default_inputs():
    assert resolve_start("minilm") == StartPoint(
        "minilm", minilm_config(), minilm_tokenizer_path(), InputOptions()
    )


@pytest.mark.parametrize(
    ("size", "config"), [("minilm", minilm_config()), ("base", base_config()), ("tiny", tiny_config())]
)
def test_random_starts_at_each_size_preset(size: str, config):
    assert resolve_start("random", size) == StartPoint(
        "random", config, minilm_tokenizer_path(), InputOptions()
    )


def test_only_the_minilm_size_starts_from_minilm_and_unknown_sizes_are_refused():
    with pytest.raises(ValueError, match="only the minilm size"):
        resolve_start("minilm", "tiny")
    with pytest.raises(ValueError, match="size must be one of"):
        resolve_start("random", "huge")


def test_a_model_folder_starts_with_its_own_config_tokenizer_and_input_options(tmp_path: Path):
    folder = untrained_model_folder(tmp_path / "model", LINES_IN_ANNOTATION_ORDER)
    start = resolve_start(str(folder), size="base")  # a folder's size is its own
    assert start == StartPoint(
        str(folder), tiny_config(), folder / "tokenizer.json", LINES_IN_ANNOTATION_ORDER
    )
    options = start.applied_to(TrainOptions(epochs=3))
    assert (options.init, options.inputs, options.epochs) == (str(folder), LINES_IN_ANNOTATION_ORDER, 3)


def test_a_folder_without_trained_weights_is_refused(tmp_path: Path):
    folder = untrained_model_folder(tmp_path / "model", InputOptions())
    onnx_only = shutil.copytree(folder, tmp_path / "onnx-only", ignore=shutil.ignore_patterns(WEIGHTS_FILE))
    for missing in (onnx_only, tmp_path / "nowhere"):
        with pytest.raises(ValueError, match="has no trained weights"):
            resolve_start(str(missing))
