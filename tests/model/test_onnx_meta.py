import json
import shutil
from pathlib import Path

import pytest

import model.onnx_meta as onnx_meta_module
from model.artifact import ArtifactMeta
from model.config import FUNSD_ENTITY_LABELS, LabelSet, tiny_config
from model.onnx_meta import ENTITY_LOGITS, OUTPUT_NAMES, VARIANT_FILES, OnnxMeta


def onnx_meta() -> OnnxMeta:
    model = ArtifactMeta(tiny_config(), LabelSet(FUNSD_ENTITY_LABELS), "a" * 64).to_dict()
    return OnnxMeta(model=model, variants=dict(VARIANT_FILES), opset=18, tools={"onnx": "1"}, export={"x": 1})


def test_entity_logits_is_the_first_output():
    assert OUTPUT_NAMES[0] == ENTITY_LOGITS


def test_round_trips_through_onnx_json(tmp_path: Path):
    meta = onnx_meta()
    meta.save(tmp_path)
    assert OnnxMeta.load(tmp_path) == meta
    assert OnnxMeta.load(tmp_path).artifact.label_set == LabelSet(FUNSD_ENTITY_LABELS)


def test_variant_file_names_the_missing_variant():
    meta = onnx_meta()
    assert meta.variant_file("int8") == "model.int8.onnx"
    with pytest.raises(ValueError, match="no 'int4' variant"):
        meta.variant_file("int4")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("format", "other", "not a docextract-onnx"),
        ("input_names", ["input_ids"], "unexpected graph inputs"),
        ("output_names", ["relation_scores"], "unexpected graph inputs"),
        ("model", {"format": "nope"}, "not a docextract-model"),
    ],
)
def test_bad_metadata_is_refused(tmp_path: Path, key: str, value, message: str):
    data = onnx_meta().to_dict() | {key: value}
    (tmp_path / "onnx.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        OnnxMeta.load(tmp_path)


def test_the_graph_source_digest_follows_the_graph_code(tmp_path: Path):
    model_dir = Path(onnx_meta_module.__file__).parent
    for name in onnx_meta_module.GRAPH_SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(model_dir / name, tmp_path / name)
    assert onnx_meta_module.graph_source_digest(tmp_path) == onnx_meta_module.graph_source_digest()
    with (tmp_path / "nn" / "layers.py").open("a") as stream:
        stream.write("\n# changed\n")
    assert onnx_meta_module.graph_source_digest(tmp_path) != onnx_meta_module.graph_source_digest()
