import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model.artifact import ArtifactMeta
from model.features import INPUT_NAMES, collate
from model.onnx_meta import (
    ENTITY_LOGITS,
    OUTPUT_NAMES,
    RELATION_FILE,
    RELATION_INPUT_NAMES,
    RELATION_LOGITS,
    VARIANT_FILES,
    OnnxMeta,
)
from model.runtime import open_session
from model.train.checkpoint import load_model
from model.train.export import (
    OPSET,
    OnnxOutputs,
    example_inputs,
    export_onnx,
    fp32_weight_nodes,
    name_scopes,
    relation_example,
    torch_logits,
)
from tests.exported import ExportedModel


@pytest.fixture(scope="module")
def torch_model(exported_model: ExportedModel):
    model, _ = load_model(exported_model.model_dir)
    return model


def session(exported_model: ExportedModel, variant: str) -> ort.InferenceSession:
    path = exported_model.onnx_dir / VARIANT_FILES[variant]
    return open_session(path)


@pytest.fixture(scope="module")
def sessions(exported_model: ExportedModel) -> dict[str, ort.InferenceSession]:
    return {variant: session(exported_model, variant) for variant in VARIANT_FILES}


def real_windows_batch(exported_model: ExportedModel) -> dict[str, np.ndarray]:
    """The windows of both training pages in one padded batch (they differ in length)."""
    pages = exported_model.trainer.train_pages
    windows = [w for page in pages for w in page.windows]
    pixels = [page.pixels for page in pages for _ in page.windows]
    return collate(windows, pixels, exported_model.trainer.pad_id)


@pytest.mark.parametrize(("batch", "length"), [(1, 9), (3, 37), (3, 130), (1, 2)])
def test_fp32_graph_matches_torch_at_other_lengths_and_batch_sizes(torch_model, sessions, batch, length):
    inputs = example_inputs(torch_model.encoder.config, batch, length, seed=length)
    if batch > 1:
        assert (inputs["attention_mask"] == 0).any()  # rows after the first are padded
    expected = torch_logits(torch_model, inputs)
    actual = sessions["fp32"].run([ENTITY_LOGITS], inputs)[0]
    assert actual.shape == expected.shape
    valid = inputs["attention_mask"].astype(bool)
    assert np.abs(actual - expected)[valid].max() <= 1e-4


def test_fp32_graph_matches_torch_on_real_padded_windows(exported_model, torch_model, sessions):
    inputs = real_windows_batch(exported_model)
    assert inputs["input_ids"].shape[0] == 2 and (inputs["attention_mask"] == 0).any()
    expected = torch_logits(torch_model, inputs)
    actual = sessions["fp32"].run([ENTITY_LOGITS], inputs)[0]
    assert np.abs(actual - expected)[inputs["attention_mask"].astype(bool)].max() <= 1e-4


def test_batch_and_sequence_dimensions_are_symbolic(sessions):
    for variant in VARIANT_FILES:
        graph = sessions[variant]
        assert [i.name for i in graph.get_inputs()] == list(INPUT_NAMES)
        assert [o.name for o in graph.get_outputs()] == list(OUTPUT_NAMES)
        for tensor in (*graph.get_inputs()[:3], graph.get_outputs()[0]):
            assert all(isinstance(dim, str) for dim in tensor.shape[:2]), tensor
        assert isinstance(graph.get_inputs()[3].shape[0], str)


def test_int8_graph_agrees_with_fp32_on_the_trained_model(exported_model, sessions):
    inputs = real_windows_batch(exported_model)
    fp32 = sessions["fp32"].run([ENTITY_LOGITS], inputs)[0].argmax(-1)
    int8 = sessions["int8"].run([ENTITY_LOGITS], inputs)[0].argmax(-1)
    valid = inputs["attention_mask"].astype(bool)
    assert (fp32 == int8)[valid].mean() >= 0.95


def weight_matmul_scopes(path) -> dict[str, list[str]]:
    """op type -> module paths of the nodes that multiply by a stored weight (MatMul or its int8 forms)."""
    graph = onnx.load(str(path)).graph
    weights = {initializer.name for initializer in graph.initializer}
    found: dict[str, list[str]] = {}
    for node in graph.node:
        if "MatMul" in node.op_type and any(name in weights for name in node.input):
            found.setdefault(node.op_type, []).append(name_scopes(node))
    return found


def test_int8_quantises_the_transformer_layers_and_keeps_the_projection_and_head_fp32(exported_model):
    config = ArtifactMeta.load(exported_model.model_dir).config
    assert fp32_weight_nodes(exported_model.onnx_dir / VARIANT_FILES["fp32"])  # names of the untouched nodes
    found = weight_matmul_scopes(exported_model.onnx_dir / VARIANT_FILES["int8"])
    fp32_scopes = found.pop("MatMul")
    assert len(fp32_scopes) == 2
    assert any("visual_proj" in scope for scope in fp32_scopes)
    assert any("classifier" in scope for scope in fp32_scopes)
    quantised = [scope for scopes in found.values() for scope in scopes]  # new nodes: no module scopes
    assert len(quantised) == 6 * config.num_layers  # query, key, value, attention output, FFN in and out


def test_quantisation_refuses_a_graph_without_module_scopes(tmp_path):
    weight = onnx.numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "w")
    node = onnx.helper.make_node("MatMul", ["x", "w"], ["y"], name="plain")
    value = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [value("x", onnx.TensorProto.FLOAT, [1, 2])],
        [value("y", onnx.TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    path = tmp_path / "plain.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match="transformer layers"):
        fp32_weight_nodes(path)


def test_int8_file_is_smaller(exported_model: ExportedModel):
    sizes = {v: (exported_model.onnx_dir / name).stat().st_size for v, name in VARIANT_FILES.items()}
    assert sizes["int8"] < sizes["fp32"]


def test_metadata_describes_a_self_contained_artifact(exported_model: ExportedModel):
    onnx_dir, model_dir = exported_model.onnx_dir, exported_model.model_dir
    meta = OnnxMeta.load(onnx_dir)
    assert meta.variants == VARIANT_FILES
    assert meta.opset == OPSET and meta.input_names == INPUT_NAMES and meta.output_names == OUTPUT_NAMES
    assert meta.model == ArtifactMeta.load(model_dir).to_dict()
    assert set(meta.tools) == {"torch", "onnx", "onnxscript", "onnxruntime"}
    assert meta.export["fp32_max_abs_diff"] <= 1e-4
    # the tiny model has a relation head: its own graph, checked against torch at other sizes
    assert meta.relation_file == "relation.onnx" and meta.export["relation_max_abs_diff"] <= 1e-4
    assert meta.export["int8_quantization"]["weight_type"] == "QInt8"
    for name in ("config.json", "tokenizer.json"):
        assert (onnx_dir / name).read_bytes() == (model_dir / name).read_bytes()
    assert json.loads((onnx_dir / "onnx.json").read_text())["format"] == "docextract-onnx"


def test_export_without_int8_lists_only_fp32(exported_model: ExportedModel, tmp_path):
    written = export_onnx(exported_model.model_dir, tmp_path, int8=False)
    assert not (tmp_path / VARIANT_FILES["int8"]).exists()
    assert sorted(p.name for p in written) == sorted(
        ["model.onnx", "relation.onnx", "onnx.json", "config.json", "tokenizer.json"]
    )
    meta = OnnxMeta.load(tmp_path)
    assert meta.variants == {"fp32": "model.onnx"}
    with pytest.raises(ValueError, match="no 'int8' variant"):
        meta.variant_file("int8")


class DictModel(torch.nn.Module):
    def forward(self, input_ids, bbox, attention_mask, pixel_values):
        return {"unused": bbox, ENTITY_LOGITS: input_ids.float()}


class PairModel(torch.nn.Module):
    def forward(self, input_ids, bbox, attention_mask, pixel_values):
        return input_ids, bbox


def test_output_wrapper_orders_outputs_by_output_names():
    ids = torch.ones(2, 3, dtype=torch.long)
    outputs = OnnxOutputs(DictModel(), (ENTITY_LOGITS,))(ids, ids, ids, ids)
    assert len(outputs) == 1 and torch.equal(outputs[0], ids.float())
    with pytest.raises(ValueError, match="the graph lists 1"):
        OnnxOutputs(PairModel(), (ENTITY_LOGITS,))(ids, ids, ids, ids)


def test_relation_graph_matches_torch(exported_model: ExportedModel, torch_model):
    head = torch_model.relation_head.eval()
    session = open_session(exported_model.onnx_dir / RELATION_FILE)
    for seed, (entities, pairs) in enumerate(((2, 2), (17, 40)), start=5):
        inputs = relation_example(torch_model.encoder.config, entities, pairs, seed)
        with torch.no_grad():
            expected = head(*(torch.from_numpy(inputs[name]) for name in RELATION_INPUT_NAMES)).numpy()
        actual = session.run([RELATION_LOGITS], inputs)[0]
        assert actual.shape == (1, pairs) and np.abs(actual - expected).max() <= 1e-4
