"""Model configuration and label set: frozen dataclasses that round-trip through JSON. No torch."""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

OUTSIDE = "O"
FUNSD_ENTITY_LABELS: tuple[str, ...] = ("answer", "header", "question")
OTHER_LABEL = "other"  # FUNSD's `other` is the O tag
BACKBONE_STRIDE = 16  # the CNN's feature map is image_size / 16, then pooled to visual_grid


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the LayoutLMv2-style encoder. Defaults are MiniLM size (hidden 384, 6 layers, 12 heads)."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    max_2d_position: int = 1001  # coordinates 0..1000
    coordinate_size: int = 64  # x0, y0, x1, y1 parts
    shape_size: int = 64  # w, h parts: 4 * 64 + 2 * 64 = 384
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    image_size: int = 224
    visual_grid: int = 7  # 7 x 7 = 49 visual tokens
    backbone_channels: tuple[int, ...] = (32, 64, 128, 256)
    rel_pos_buckets: int = 32
    rel_pos_max_distance: int = 128
    rel_2d_buckets: int = 64
    rel_2d_max_distance: int = 256
    use_visual: bool = True
    use_spatial_bias: bool = True

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}"
            )
        if 4 * self.coordinate_size + 2 * self.shape_size != self.hidden_size:
            raise ValueError("4 * coordinate_size + 2 * shape_size must equal hidden_size")
        if self.image_size % (BACKBONE_STRIDE * self.visual_grid):
            raise ValueError(f"image_size must be a multiple of {BACKBONE_STRIDE} * visual_grid")
        object.__setattr__(self, "backbone_channels", tuple(self.backbone_channels))

    @property
    def num_visual_tokens(self) -> int:
        return self.visual_grid * self.visual_grid if self.use_visual else 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["backbone_channels"] = list(self.backbone_channels)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)

    def with_changes(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)


def minilm_config() -> ModelConfig:
    """The default size, whose text stream is initialised from all-MiniLM-L6-v2."""
    return ModelConfig()


def base_config() -> ModelConfig:
    """The paper's base size (12 layers, hidden 768) for users with GPUs."""
    return ModelConfig(
        hidden_size=768,
        num_layers=12,
        num_heads=12,
        intermediate_size=3072,
        coordinate_size=128,
        shape_size=128,
    )


def tiny_config(vocab_size: int = 30522) -> ModelConfig:
    """A few-thousand-parameter-per-layer model for tests."""
    return ModelConfig(
        vocab_size=vocab_size,
        hidden_size=48,
        num_layers=2,
        num_heads=4,
        intermediate_size=96,
        coordinate_size=8,
        shape_size=8,
        image_size=64,
        visual_grid=2,
        backbone_channels=(4, 8, 8, 8),
        max_position_embeddings=512,
    )


@dataclass(frozen=True)
class LabelSet:
    """Entity labels and the BIO tags built from them. Tag 0 is always `O`."""

    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels) or OUTSIDE in self.labels or not self.labels:
            raise ValueError(f"labels must be unique, non-empty and not {OUTSIDE!r}: {self.labels}")

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> "LabelSet":
        """Sorted entity labels, with FUNSD's `other` mapped to the O tag."""
        return cls(tuple(sorted(set(labels) - {OTHER_LABEL})))

    @property
    def tags(self) -> tuple[str, ...]:
        return (OUTSIDE, *(f"{prefix}-{label}" for label in self.labels for prefix in ("B", "I")))

    @property
    def num_tags(self) -> int:
        return 1 + 2 * len(self.labels)

    def begin_tag(self, label: str) -> int:
        """Tag id of B-label; O (0) for `other` or labels outside the set."""
        return 1 + 2 * self.labels.index(label) if label in self.labels else 0

    def inside_tag(self, label: str) -> int:
        return self.begin_tag(label) + 1 if label in self.labels else 0

    def tag_label(self, tag: int) -> tuple[str, str | None]:
        """('B' | 'I' | 'O', label or None) for a tag id."""
        if tag == 0:
            return OUTSIDE, None
        return ("B" if tag % 2 else "I"), self.labels[(tag - 1) // 2]
