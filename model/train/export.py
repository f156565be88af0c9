"""Saved model -> self-contained ONNX serving folder (fp32 `model.onnx`, int8 `model.int8.onnx`, `onnx.json`,
`config.json`, `tokenizer.json`). Needs torch, onnx and onnxscript (the `train` extra).

The graph comes from torch's dynamo exporter with a dynamic batch and sequence length (the example batch
has 2 rows: a size-1 example would pin the batch dimension). Every export is checked against torch at a
sequence length other than the example's, with padding, before it is written out.
"""

import importlib.metadata
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from torch import nn

from model.artifact import META_FILE, TOKENIZER_FILE
from model.config import ModelConfig
from model.features import INPUT_NAMES
from model.nn.layers import explicit_attention
from model.nn.network import EntityTagger, RelationHead
from model.onnx_meta import (
    ENTITY_LOGITS,
    OUTPUT_NAMES,
    RELATION_FILE,
    RELATION_INPUT_NAMES,
    RELATION_LOGITS,
    TEXT_STATES,
    VARIANT_FILES,
    OnnxMeta,
    output_names,
)
from model.relations import GEOMETRY_FEATURES
from model.runtime import open_session
from model.train.checkpoint import load_model
from model.train.onnx_fusion import fuse_attention, fuse_gelu

OPSET = 18
EXAMPLE_LENGTH = 16
CHECK_LENGTHS = (7, 45)  # parity is checked at lengths other than the traced one
PARITY_TOLERANCE = 1e-3  # an fp32 graph further than this from torch is broken, not rounded
QUANTIZED_OPS = ("MatMul",)
QUANTIZED_SCOPE = ".encoder.layers."  # int8 for the transformer layers' weight MatMuls only
TOOLS = ("torch", "onnx", "onnxscript", "onnxruntime")


class OnnxOutputs(nn.Module):
    """The model with its outputs as a tuple in `names` order (a dict output is read by name). A tagger
    with a relation head also returns its text states, which the relation graph reads."""

    def __init__(self, model: nn.Module, names: tuple[str, ...] = OUTPUT_NAMES[:1]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(
        self,
        input_ids: torch.Tensor,
        bbox: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        if TEXT_STATES in self.names and isinstance(self.model, EntityTagger):
            states, logits = self.model.states_and_logits(input_ids, bbox, attention_mask, pixel_values)
            outputs: Any = {ENTITY_LOGITS: logits, TEXT_STATES: states}
        else:
            outputs = self.model(input_ids, bbox, attention_mask, pixel_values)
        if isinstance(outputs, Mapping):
            return tuple(outputs[name] for name in self.names)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        if len(outputs) != len(self.names):
            raise ValueError(f"model returns {len(outputs)} outputs, the graph lists {len(self.names)}")
        return outputs


def example_inputs(config: ModelConfig, batch: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random but well-formed model inputs; every row after the first has a padded tail."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 1001, size=(batch, length, 2, 2))
    bbox = np.concatenate([corners.min(axis=2), corners.max(axis=2)], axis=-1).astype(np.int64)
    mask = np.ones((batch, length), dtype=np.int64)
    for row in range(1, batch):
        mask[row, max(2, length - row * length // (batch + 1)) :] = 0
    size = config.image_size
    return {
        "input_ids": rng.integers(1, config.vocab_size, size=(batch, length)).astype(np.int64),
        "bbox": bbox,
        "attention_mask": mask,
        "pixel_values": rng.uniform(-1, 1, size=(batch, 3, size, size)).astype(np.float32),
    }


def dynamic_shapes(config: ModelConfig) -> dict[str, dict[int, Any]]:
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=2, max=config.max_position_embeddings)
    return {
        "input_ids": {0: batch, 1: sequence},
        "bbox": {0: batch, 1: sequence},
        "attention_mask": {0: batch, 1: sequence},
        "pixel_values": {0: batch},
    }


def export_fp32(
    model: nn.Module,
    config: ModelConfig,
    path: Path,
    opset: int = OPSET,
    names: tuple[str, ...] = OUTPUT_NAMES[:1],
) -> None:
    """Trace `model` with the dynamo exporter into one self-contained .onnx file (weights inside)."""
    example = example_inputs(config, batch=2, length=EXAMPLE_LENGTH)
    args = tuple(torch.from_numpy(example[name]) for name in INPUT_NAMES)
    with warnings.catch_warnings():  # the exporter's notes on axis names and pytree deprecations
        warnings.filterwarnings("ignore", category=UserWarning, message=".*axis name")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec")
        _export(model, config, args, path, opset, names)


def _export(
    model: nn.Module, config: ModelConfig, args: tuple, path: Path, opset: int, names: tuple[str, ...]
) -> None:
    with explicit_attention(model):  # the op-by-op attention that `fuse_kernels` matches
        torch.onnx.export(
            OnnxOutputs(model, names).eval(),
            args,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=list(names),
            dynamic_shapes=dynamic_shapes(config),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    fuse_kernels(path, config)


def fuse_kernels(path: Path, config: ModelConfig) -> dict[str, int]:
    """Rewrite the graph at `path` into fused attention and GELU kernels (`model.train.onnx_fusion`).
    Every layer must match: a pattern that no longer matches the model code fails the export here, not
    silently in the latency."""
    graph = onnx.load(str(path))
    fused = {"gelu": fuse_gelu(graph)}
    if config.use_spatial_bias:  # a mask-only bias is [B, 1, 1, S]; onnxruntime's Attention wants [.., S, S]
        fused["attention"] = fuse_attention(graph, config.num_heads, config.hidden_size // config.num_heads)
    if any(count != config.num_layers for count in fused.values()):
        raise RuntimeError(f"{path}: fused {fused} of {config.num_layers} layers; the graph changed shape")
    onnx.save(graph, str(path))
    return fused


def quantize_int8(fp32_path: Path, int8_path: Path, per_channel: bool = True) -> None:
    """Dynamic int8 quantisation of the transformer layers' MatMul weights (activations: per call)."""
    quantize_dynamic(
        fp32_path,
        int8_path,
        op_types_to_quantize=list(QUANTIZED_OPS),
        per_channel=per_channel,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=fp32_weight_nodes(fp32_path),
    )


def fp32_weight_nodes(path: Path) -> list[str]:
    """The weight MatMuls outside the transformer layers (the visual projection, the entity head), which stay
    fp32: they are a rounding error of the time, and their errors reach every token (the visual tokens are
    attended to by all) or the logits directly. On the FUNSD training forms keeping them fp32 cut the int8
    graph's KL divergence from the fp32 one by 3% (BENCHMARKS.md, int8)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {initializer.name for initializer in graph.initializer}
    inside, outside = [], []
    for node in graph.node:
        if node.op_type in QUANTIZED_OPS and any(name in weights for name in node.input):
            (inside if QUANTIZED_SCOPE in name_scopes(node) else outside).append(node.name)
    if not inside:
        raise ValueError(f"{path}: no weight MatMul is tagged as part of the transformer layers")
    return outside


def name_scopes(node: onnx.NodeProto) -> str:
    """The torch module path the dynamo exporter recorded for `node` ('' when there is none)."""
    return next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.name_scopes"), "")


def onnx_logits(path: Path, inputs: Mapping[str, np.ndarray], threads: int = 1) -> np.ndarray:
    return open_session(path, threads).run([ENTITY_LOGITS], dict(inputs))[0]


@torch.no_grad()
def torch_logits(model: nn.Module, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    return model(*(torch.from_numpy(inputs[name]) for name in INPUT_NAMES)).float().numpy()


def valid_positions(inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    return inputs["attention_mask"].astype(bool)


def check_variants(model: nn.Module, config: ModelConfig, paths: Mapping[str, Path]) -> dict[str, Any]:
    """fp32 max abs logit difference to torch, and int8 argmax agreement with fp32, on unpadded tokens."""
    report: dict[str, Any] = {"check_lengths": list(CHECK_LENGTHS), "fp32_max_abs_diff": 0.0}
    agreements = []
    for seed, length in enumerate(CHECK_LENGTHS, start=1):
        inputs = example_inputs(config, batch=3, length=length, seed=seed)
        reference, valid = torch_logits(model, inputs), valid_positions(inputs)
        fp32 = onnx_logits(paths["fp32"], inputs)
        difference = float(np.abs(fp32 - reference)[valid].max())
        report["fp32_max_abs_diff"] = max(report["fp32_max_abs_diff"], difference)
        if "int8" in paths:
            int8 = onnx_logits(paths["int8"], inputs)
            agreements.append(float((int8.argmax(-1) == fp32.argmax(-1))[valid].mean()))
    if agreements:
        report["int8_argmax_agreement_random_inputs"] = float(np.mean(agreements))
    if report["fp32_max_abs_diff"] > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX export differs from torch by {report['fp32_max_abs_diff']:.2e}")
    return report


def tool_versions() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in TOOLS}


def copy_model_files(model_dir: Path, out_dir: Path) -> None:
    for name in (META_FILE, TOKENIZER_FILE):
        shutil.copyfile(Path(model_dir) / name, Path(out_dir) / name)


def export_onnx(model_dir: Path, out_dir: Path, int8: bool = True, per_channel: bool = True) -> list[Path]:
    """Export the saved model in `model_dir` to `out_dir`; returns the files written."""
    model, meta = load_model(model_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"fp32": out_dir / VARIANT_FILES["fp32"]}
    names = output_names(model.relation_head is not None)
    started = time.monotonic()
    export_fp32(model, meta.config, paths["fp32"], names=names)
    timings = {"fp32_export_seconds": round(time.monotonic() - started, 2)}
    if int8:
        paths["int8"] = out_dir / VARIANT_FILES["int8"]
        started = time.monotonic()
        quantize_int8(paths["fp32"], paths["int8"], per_channel)
        timings["int8_quantize_seconds"] = round(time.monotonic() - started, 2)
    report = check_variants(model, meta.config, paths)
    relation_file = None
    if model.relation_head is not None:
        relation_file = RELATION_FILE
        report["relation_max_abs_diff"] = export_relation_head(
            model.relation_head, meta.config, out_dir / RELATION_FILE
        )
    quantization = {
        "op_types": list(QUANTIZED_OPS),
        "scope": "transformer layers (visual projection and entity head stay fp32)",
        "per_channel": per_channel,
        "weight_type": "QInt8",
    }
    onnx_meta = OnnxMeta(
        model=meta.to_dict(),
        variants={variant: path.name for variant, path in paths.items()},
        opset=OPSET,
        tools=tool_versions(),
        export={**timings, **report, "int8_quantization": quantization if int8 else None},
        output_names=names,
        relation_file=relation_file,
    )
    copy_model_files(model_dir, out_dir)
    extra = [out_dir / RELATION_FILE] if relation_file else []
    return [*paths.values(), *extra, onnx_meta.save(out_dir), out_dir / META_FILE, out_dir / TOKENIZER_FILE]


def relation_example(config: ModelConfig, entities: int, pairs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random relation-head inputs for one page (batch 1)."""
    rng = np.random.default_rng(seed)
    return {
        "entity_states": rng.normal(size=(1, entities, config.hidden_size)).astype(np.float32),
        "entity_labels": rng.integers(0, 2, size=(1, entities)).astype(np.int64),
        "pair_index": rng.integers(0, entities, size=(1, pairs, 2)).astype(np.int64),
        "pair_features": rng.normal(size=(1, pairs, GEOMETRY_FEATURES)).astype(np.float32),
    }


def export_relation_head(head: RelationHead, config: ModelConfig, path: Path) -> float:
    """Export the relation head as its own graph (dynamic entity and pair counts); returns the max abs
    logit difference to torch over two other sizes. Raises when it exceeds the parity tolerance."""
    head = head.eval()
    example = relation_example(config, entities=5, pairs=7)
    entities, pairs = (
        torch.export.Dim("entities", min=1, max=4096),
        torch.export.Dim("pairs", min=1, max=65536),
    )
    shapes = {
        "entity_states": {1: entities},
        "entity_labels": {1: entities},
        "pair_index": {1: pairs},
        "pair_features": {1: pairs},
    }
    args = tuple(torch.from_numpy(example[name]) for name in RELATION_INPUT_NAMES)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        torch.onnx.export(
            head, args, str(path), input_names=list(RELATION_INPUT_NAMES), output_names=[RELATION_LOGITS],
            dynamic_shapes=shapes, opset_version=OPSET, dynamo=True, external_data=False, verbose=False,
        )  # fmt: skip
    session = open_session(path)
    worst = 0.0
    for seed, (count, pair_count) in enumerate(((3, 4), (11, 30)), start=1):
        inputs = relation_example(config, count, pair_count, seed)
        with torch.no_grad():
            reference = head(*(torch.from_numpy(inputs[n]) for n in RELATION_INPUT_NAMES)).numpy()
        worst = max(worst, float(np.abs(session.run([RELATION_LOGITS], inputs)[0] - reference).max()))
    if worst > PARITY_TOLERANCE:
        raise RuntimeError(f"relation graph differs from torch by {worst:.2e}")
    return worst


def main(argv: list[str] | None = None) -> None:
    """`python -m model.train.export MODEL_DIR OUT_DIR [--no-int8]`: the export in a process of its own, so a
    serving process never imports torch (and each export starts from a clean torch.export state)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m model.train.export", description=main.__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args(argv)
    for path in export_onnx(args.model_dir, args.out_dir, int8=not args.no_int8):
        print(path)


if __name__ == "__main__":
    main()
