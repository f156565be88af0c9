"""Model artifact metadata (config.json beside the weights): everything needed to rebuild and check a
model. No torch, so the serving runtime can read it."""

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from model.config import LabelSet, ModelConfig
from model.relations import RelationSchema

T = TypeVar("T")
ARTIFACT_FORMAT = "docextract-model"
ARTIFACT_VERSION = 1
META_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class InputOptions:
    """How pages are turned into model input; training and inference must agree."""

    word_order: str = "reading"
    box_level: str = "word"
    max_tokens: int = 512
    overlap_tokens: int = 128


@dataclass(frozen=True)
class ArtifactMeta:
    config: ModelConfig
    label_set: LabelSet
    vocab_sha256: str
    inputs: InputOptions = InputOptions()
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    docextract_version: str = "0.1.0"
    relation_schema: RelationSchema | None = None  # set when the model has a relation head

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "format_version": ARTIFACT_VERSION,
            "docextract_version": self.docextract_version,
            "created": self.created,
            "config": self.config.to_dict(),
            "labels": list(self.label_set.labels),
            "tags": list(self.label_set.tags),
            "vocab_sha256": self.vocab_sha256,
            "inputs": asdict(self.inputs),
            "metrics": self.metrics,
            "training": self.training,
            "relations": self.relation_schema.to_list() if self.relation_schema else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArtifactMeta":
        if data.get("format") != ARTIFACT_FORMAT or data.get("format_version") != ARTIFACT_VERSION:
            raise ValueError(f"not a {ARTIFACT_FORMAT} v{ARTIFACT_VERSION} artifact: {data.get('format')!r}")
        label_set = LabelSet(tuple(data["labels"]))
        if list(label_set.tags) != data["tags"]:
            raise ValueError("artifact tags do not match its labels")
        return cls(
            config=ModelConfig.from_dict(data["config"]),
            label_set=label_set,
            vocab_sha256=data["vocab_sha256"],
            inputs=InputOptions(**data["inputs"]),
            metrics=data.get("metrics", {}),
            training=data.get("training", {}),
            created=data["created"],
            docextract_version=data["docextract_version"],
            relation_schema=RelationSchema.from_list(data["relations"]) if data.get("relations") else None,
        )

    def save(self, directory: Path) -> Path:
        return save_json(Path(directory) / META_FILE, self.to_dict())

    @classmethod
    def load(cls, directory: Path) -> "ArtifactMeta":
        return load_json(Path(directory) / META_FILE, cls.from_dict, "model artifact metadata")


def save_json(path: Path, data: dict[str, Any]) -> Path:
    """Write metadata as sorted, indented JSON."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_json(path: Path, parse: Callable[[dict[str, Any]], T], what: str) -> T:
    """Read and parse a metadata file; any problem is a ValueError naming the file."""
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: invalid {what}: {exc}") from exc
