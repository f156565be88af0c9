"""The ONNX serving artifact written by `model.train.export` and read by `model.runtime`. No torch.

A serving folder holds `model.onnx` (fp32) and/or `model.int8.onnx` (dynamically quantised), `onnx.json`
(this module), and copies of the model's `config.json` and `tokenizer.json`, so it is self-contained.

Graph outputs are listed in ONE place, `OUTPUT_NAMES`, in the order the exported module returns them
(a model that returns a dict is read by these names). A second head (e.g. relation scores) is added by
appending its name here; the exporter, the metadata and the runtime's session call all follow.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from model.artifact import ArtifactMeta, load_json, save_json
from model.features import INPUT_NAMES

ONNX_FORMAT = "docextract-onnx"
ONNX_FORMAT_VERSION = 1
ONNX_META_FILE = "onnx.json"
ENTITY_LOGITS = "entity_logits"
TEXT_STATES = "text_states"  # [B, L, H] encoder states of the text tokens, for the relation graph
OUTPUT_NAMES: tuple[str, ...] = (ENTITY_LOGITS, TEXT_STATES)
RELATION_FILE = "relation.onnx"
RELATION_INPUT_NAMES: tuple[str, ...] = ("entity_states", "entity_labels", "pair_index", "pair_features")
RELATION_LOGITS = "relation_logits"
# The modules whose code decides what an export of given weights computes: the graph, its inputs, and how
# it is exported and quantised. An export made by other versions of them is stale.
GRAPH_SOURCES: tuple[str, ...] = (
    "config.py",
    "features.py",
    "nn/layers.py",
    "nn/network.py",
    "train/export.py",
    "train/onnx_fusion.py",
)


def graph_source_digest(
    folder: Path = Path(__file__).parent, sources: tuple[str, ...] = GRAPH_SOURCES
) -> str:
    """sha256 over the source of the modules that define the exported graph (read as files: no torch)."""
    digest = hashlib.sha256()
    for name in sources:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return digest.hexdigest()


def output_names(has_relations: bool) -> tuple[str, ...]:
    """Encoder graph outputs: entity logits, plus the text states when a relation head reads them."""
    return OUTPUT_NAMES if has_relations else (ENTITY_LOGITS,)


Variant = Literal["fp32", "int8"]
VARIANT_FILES: dict[str, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}


@dataclass(frozen=True)
class OnnxMeta:
    """What `onnx.json` records: the model's metadata, the variant files present and how they were made."""

    model: dict[str, Any]  # ArtifactMeta.to_dict() of the exported model
    variants: dict[str, str]  # variant -> file name, only the files that exist
    opset: int
    input_names: tuple[str, ...] = INPUT_NAMES
    output_names: tuple[str, ...] = OUTPUT_NAMES
    tools: dict[str, str] = field(default_factory=dict)  # package -> version used to export
    export: dict[str, Any] = field(default_factory=dict)  # options, timings and parity checks
    relation_file: str | None = None  # the relation graph (fp32), when the model has a relation head

    @property
    def artifact(self) -> ArtifactMeta:
        return ArtifactMeta.from_dict(self.model)

    def variant_file(self, variant: str) -> str:
        if variant not in self.variants:
            raise ValueError(f"no {variant!r} variant in this artifact; it has {sorted(self.variants)}")
        return self.variants[variant]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ONNX_FORMAT,
            "format_version": ONNX_FORMAT_VERSION,
            "model": self.model,
            "variants": self.variants,
            "opset": self.opset,
            "input_names": list(self.input_names),
            "output_names": list(self.output_names),
            "tools": self.tools,
            "export": self.export,
            "relation_file": self.relation_file,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OnnxMeta":
        if data.get("format") != ONNX_FORMAT or data.get("format_version") != ONNX_FORMAT_VERSION:
            raise ValueError(f"not a {ONNX_FORMAT} v{ONNX_FORMAT_VERSION} artifact: {data.get('format')!r}")
        meta = cls(
            model=dict(data["model"]),
            variants=dict(data["variants"]),
            opset=int(data["opset"]),
            input_names=tuple(data["input_names"]),
            output_names=tuple(data["output_names"]),
            tools=dict(data.get("tools", {})),
            export=dict(data.get("export", {})),
            relation_file=data.get("relation_file"),
        )
        if meta.input_names != INPUT_NAMES or ENTITY_LOGITS not in meta.output_names:
            raise ValueError(f"unexpected graph inputs {meta.input_names} or outputs {meta.output_names}")
        if meta.relation_file and TEXT_STATES not in meta.output_names:
            raise ValueError("a relation graph needs the encoder's text_states output")
        meta.artifact  # noqa: B018 - validates the embedded model metadata
        return meta

    def save(self, directory: Path) -> Path:
        return save_json(Path(directory) / ONNX_META_FILE, self.to_dict())

    @classmethod
    def load(cls, directory: Path) -> "OnnxMeta":
        return load_json(Path(directory) / ONNX_META_FILE, cls.from_dict, "ONNX artifact metadata")
