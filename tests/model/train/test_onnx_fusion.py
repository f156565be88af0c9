import math
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from model.artifact import ArtifactMeta
from model.config import FUNSD_ENTITY_LABELS, LabelSet, tiny_config
from model.nn.network import EntityTagger
from model.onnx_meta import VARIANT_FILES
from model.train.export import example_inputs, export_fp32, onnx_logits, torch_logits
from model.train.onnx_fusion import fuse_attention, fuse_gelu
from tests.exported import ExportedModel

BATCH, LENGTH, HEADS, HEAD_SIZE = 2, 5, 3, 4
HIDDEN = HEADS * HEAD_SIZE


def constant(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def attention_graph(scale_divisor: float = math.sqrt(HEAD_SIZE)) -> onnx.ModelProto:
    """The exporter's spelling of biased attention: split heads, Q K^T / sqrt(d) + bias, softmax, V, merge."""
    node = helper.make_node
    nodes = [
        node("Reshape", ["q", "split_shape"], ["q4"]),
        node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
        node("Reshape", ["k", "split_shape"], ["k4"]),
        node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
        node("Reshape", ["v", "split_shape"], ["v4"]),
        node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
        node("MatMul", ["qh", "kt"], ["scores"]),
        node("Div", ["scores", "divisor"], ["scaled"]),
        node("Add", ["scaled", "bias"], ["biased"]),
        node("Softmax", ["biased"], ["probs"], axis=-1),
        node("MatMul", ["probs", "vh"], ["context"]),
        node("Transpose", ["context"], ["merged4"], perm=[0, 2, 1, 3]),
        node("Reshape", ["merged4", "merge_shape"], ["out"]),
    ]
    tensor = helper.make_tensor_value_info
    inputs = [tensor(n, TensorProto.FLOAT, [BATCH, LENGTH, HIDDEN]) for n in ("q", "k", "v")]
    inputs.append(tensor("bias", TensorProto.FLOAT, [BATCH, HEADS, LENGTH, LENGTH]))
    initializers = [
        constant("split_shape", np.array([BATCH, LENGTH, HEADS, HEAD_SIZE], dtype=np.int64)),
        constant("merge_shape", np.array([BATCH, LENGTH, HIDDEN], dtype=np.int64)),
        constant("divisor", np.float32(scale_divisor)),
    ]
    outputs = [tensor("out", TensorProto.FLOAT, [BATCH, LENGTH, HIDDEN])]
    graph = helper.make_graph(nodes, "attention", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def gelu_graph(half: float = 0.5) -> onnx.ModelProto:
    node = helper.make_node
    nodes = [
        node("Div", ["x", "root2"], ["scaled"]),
        node("Erf", ["scaled"], ["erf"]),
        node("Add", ["erf", "one"], ["plus_one"]),
        node("Mul", ["half", "plus_one"], ["halved"]),
        node("Mul", ["x", "halved"], ["y"]),
    ]
    tensor = helper.make_tensor_value_info
    initializers = [
        constant("root2", np.float32(math.sqrt(2))),
        constant("one", np.float32(1)),
        constant("half", np.float32(half)),
    ]
    graph = helper.make_graph(
        nodes,
        "gelu",
        [tensor("x", TensorProto.FLOAT, [3, 7])],
        [tensor("y", TensorProto.FLOAT, [3, 7])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def op_counts(model: onnx.ModelProto) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


def test_biased_attention_becomes_one_attention_op_with_the_same_output():
    rng = np.random.default_rng(0)
    feeds = {n: rng.normal(size=(BATCH, LENGTH, HIDDEN)).astype(np.float32) for n in ("q", "k", "v")}
    feeds["bias"] = rng.normal(size=(BATCH, HEADS, LENGTH, LENGTH)).astype(np.float32)
    feeds["bias"][1, :, :, -2:] = -10000.0  # padded keys
    model = attention_graph()
    expected = run(model, feeds)
    assert fuse_attention(model, HEADS, HEAD_SIZE) == 1
    onnx.checker.check_model(model)
    assert op_counts(model) == Counter({"Attention": 1})
    assert {(o.domain, o.version) for o in model.opset_import} == {("", 23)}  # the op's opset
    assert {init.name for init in model.graph.initializer} == set()  # the shapes and divisor went with it
    np.testing.assert_allclose(run(model, feeds), expected, atol=1e-5)


def test_attention_with_another_scale_is_left_alone():
    model = attention_graph(scale_divisor=3.0)
    before = model.SerializeToString()
    assert fuse_attention(model, HEADS, HEAD_SIZE) == 0
    assert model.SerializeToString() == before


def test_attention_whose_scores_are_read_elsewhere_is_left_alone():
    model = attention_graph()
    model.graph.output.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, None))
    assert fuse_attention(model, HEADS, HEAD_SIZE) == 0
    assert "Softmax" in op_counts(model)


def test_erf_gelu_becomes_one_gelu_with_the_same_output():
    x = np.linspace(-6, 6, 21, dtype=np.float32).reshape(3, 7)
    model = gelu_graph()
    expected = run(model, {"x": x})
    assert fuse_gelu(model) == 1
    onnx.checker.check_model(model)
    assert op_counts(model) == Counter({"Gelu": 1})
    np.testing.assert_allclose(run(model, {"x": x}), expected, atol=1e-6)


def test_gelu_lookalike_with_another_constant_is_left_alone():
    model = gelu_graph(half=0.25)
    assert fuse_gelu(model) == 0
    assert op_counts(model)["Erf"] == 1


@pytest.mark.parametrize("variant", sorted(VARIANT_FILES))
def test_exported_graphs_use_the_fused_kernels_in_every_layer(exported_model: ExportedModel, variant: str):
    config = ArtifactMeta.load(exported_model.model_dir).config
    counts = op_counts(onnx.load(str(exported_model.onnx_dir / VARIANT_FILES[variant])))
    assert counts["Attention"] == counts["Gelu"] == config.num_layers
    assert counts["Softmax"] == counts["Erf"] == 0


def test_a_model_without_spatial_bias_keeps_its_plain_attention(tmp_path):
    """Its mask-only bias is [B, 1, 1, S], which onnxruntime's `Attention` does not broadcast over queries:
    GELU fused, attention not."""
    config = tiny_config().with_changes(use_spatial_bias=False)
    torch.manual_seed(0)
    model = EntityTagger(config, LabelSet(FUNSD_ENTITY_LABELS).num_tags).eval()
    path = tmp_path / "plain.onnx"
    export_fp32(model, config, path)
    counts = op_counts(onnx.load(str(path)))
    assert counts["Gelu"] == counts["Softmax"] == config.num_layers and counts["Attention"] == 0
    inputs = example_inputs(config, 2, 40, seed=3)
    difference = np.abs(onnx_logits(path, inputs) - torch_logits(model, inputs))
    assert difference[inputs["attention_mask"].astype(bool)].max() <= 1e-4
