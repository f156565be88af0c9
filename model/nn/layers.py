"""Building blocks of the LayoutLMv2-style encoder (arXiv 2012.14740), in torch.

Parameter names of the text stream follow BERT's layout (word_embeddings, query, key, value, ...) so that
`model.train.minilm` can map the packaged MiniLM checkpoint onto them one to one.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from model.config import BACKBONE_STRIDE, ModelConfig

MASK_BIAS = -10000.0  # added to the attention scores of padded keys


class LayoutEmbeddings(nn.Module):
    """2-D layout embedding: concat of x(x0), y(y0), x(x1), y(y1), h, w from the 0-1000 grid.

    The x tables are shared by x0 and x1, the y tables by y0 and y1. Boxes are ordered and clamped first.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        size = config.max_2d_position
        self.x_position_embeddings = nn.Embedding(size, config.coordinate_size)
        self.y_position_embeddings = nn.Embedding(size, config.coordinate_size)
        self.h_position_embeddings = nn.Embedding(size, config.shape_size)
        self.w_position_embeddings = nn.Embedding(size, config.shape_size)
        self.max_coordinate = size - 1

    def forward(self, bbox: torch.Tensor) -> torch.Tensor:
        bbox = ordered_clamped_boxes(bbox, self.max_coordinate)
        x0, y0, x1, y1 = bbox.unbind(-1)
        return torch.cat(
            [
                self.x_position_embeddings(x0),
                self.y_position_embeddings(y0),
                self.x_position_embeddings(x1),
                self.y_position_embeddings(y1),
                self.h_position_embeddings(y1 - y0),
                self.w_position_embeddings(x1 - x0),
            ],
            dim=-1,
        )


def ordered_clamped_boxes(bbox: torch.Tensor, max_coordinate: int) -> torch.Tensor:
    """[..., 4] boxes with x0 <= x1, y0 <= y1, all in [0, max_coordinate]."""
    bbox = bbox.clamp(0, max_coordinate)
    x0, y0, x1, y1 = bbox.unbind(-1)
    return torch.stack(
        [torch.minimum(x0, x1), torch.minimum(y0, y1), torch.maximum(x0, x1), torch.maximum(y0, y1)], -1
    )


class ResidualBlock(nn.Module):
    """Basic ResNet block with GroupNorm (stable at the small batch sizes of fine-tuning)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(_groups(out_channels), out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.GroupNorm(_groups(out_channels), out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(out)) + self.shortcut(x))


def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class VisualBackbone(nn.Module):
    """Small ResNet-style CNN: [B, 3, S, S] -> feature map [B, C, S/16, S/16] -> pooled [B, C, G, G]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c0, c1, c2, c3 = config.backbone_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c0, 7, 2, 3, bias=False),
            nn.GroupNorm(_groups(c0), c0),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        self.stages = nn.Sequential(
            ResidualBlock(c0, c1, 1), ResidualBlock(c1, c2, 2), ResidualBlock(c2, c3, 2)
        )
        # fixed-size pooling (kernel = stride = feature size / grid): exports to ONNX as a plain AveragePool
        self.pool_size = config.image_size // BACKBONE_STRIDE // config.visual_grid
        self.out_channels = c3

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(pixel_values))
        return F.avg_pool2d(features, self.pool_size, self.pool_size)


def relative_position_bucket(relative: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bidirectional T5-style buckets: exact for small distances, logarithmic up to `max_distance`.

    Float in, float out (integral values, exact below 2**24). The choices are blends, not `torch.where`:
    the exported graph runs them as cheap vectorised arithmetic, where onnxruntime's int64 casts and Where
    took half of the spatial bias's time at 561 tokens."""
    half = num_buckets // 2
    max_exact = half // 2
    distance = relative.abs()
    scaled = torch.log(distance.clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
    large = ((scaled * (half - max_exact)).floor() + max_exact).clamp(max=half - 1)
    small = (distance < max_exact).to(distance.dtype)
    unsigned = large + small * (distance - large)  # distance where it is small, else the log bucket
    return unsigned + (relative > 0).to(distance.dtype) * half


class SpatialBias(nn.Module):
    """Learned attention biases from bucketed relative 1-D positions and 2-D x / y distances.

    Computed once per forward as [B, heads, S, S] and shared by every layer. The three tables are summed
    into one joint table over (1-D, x, y) bucket triples (32 * 64 * 64 entries per head, cheap to build)
    so that the bias is a single gather from it, straight into the heads-first layout: three gathers of
    [B, S, S, heads], two additions and a transpose cost more than the rest of the attention at 561 tokens.
    The padding mask is one more entry of the joint table (`MASK_BIAS` for every head), chosen for padded
    keys in the same gather, instead of a separate [B, heads, S, S] addition.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.rel_pos_bias = nn.Embedding(config.rel_pos_buckets, config.num_heads)
        self.rel_x_bias = nn.Embedding(config.rel_2d_buckets, config.num_heads)
        self.rel_y_bias = nn.Embedding(config.rel_2d_buckets, config.num_heads)

    @property
    def masked_entry(self) -> int:
        """The joint-table column that padded keys get: one past the bucket triples."""
        return self.config.rel_pos_buckets * self.config.rel_2d_buckets**2

    def joint_table(self) -> torch.Tensor:
        """[heads, 1-D buckets * x buckets * y buckets + 1]: the sum of the three tables for each triple,
        then the padding entry."""
        pos, x, y = (t.weight.t() for t in (self.rel_pos_bias, self.rel_x_bias, self.rel_y_bias))
        joint = (pos[:, :, None, None] + x[:, None, :, None] + y[:, None, None, :]).reshape(pos.shape[0], -1)
        return torch.cat([joint, torch.full_like(joint[:, :1], MASK_BIAS)], dim=1)

    def joint_bucket(
        self, position_ids: torch.Tensor, bbox: torch.Tensor, key_mask: torch.Tensor
    ) -> torch.Tensor:
        """[B, S, S] index into the joint table for each (query, key) pair; padded keys get `masked_entry`."""
        c = self.config

        def bucket(coordinates: torch.Tensor, buckets: int, distance: int) -> torch.Tensor:
            coordinates = coordinates.float()
            relative = coordinates.unsqueeze(-2) - coordinates.unsqueeze(-1)  # [B, S, S]: key - query
            return relative_position_bucket(relative, buckets, distance)

        one_d = bucket(position_ids, c.rel_pos_buckets, c.rel_pos_max_distance)
        x = bucket(bbox[..., 0], c.rel_2d_buckets, c.rel_2d_max_distance)
        y = bucket(bbox[..., 3], c.rel_2d_buckets, c.rel_2d_max_distance)
        index = (one_d * c.rel_2d_buckets + x) * c.rel_2d_buckets + y
        keep = key_mask[:, None, :].to(index.dtype)
        return (keep * (index - self.masked_entry) + self.masked_entry).long()

    def forward(self, position_ids: torch.Tensor, bbox: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """[B, S] positions, [B, S, 4] boxes, [B, S] key mask (0 = padding) -> [B, heads, S, S] score bias."""
        index = self.joint_bucket(position_ids, bbox, key_mask)
        return self.joint_table()[:, index].transpose(0, 1)  # [heads, B, S, S] -> [B, heads, S, S]


class SelfAttention(nn.Module):
    """Multi-head self-attention whose scores take an additive bias (spatial bias plus padding mask).

    In torch it runs as `scaled_dot_product_attention` with the bias as its float mask: the scores, their
    scaling, the bias, the softmax and the dropout never sit in memory as separate [B, heads, S, S] tensors
    (inference 1.3x faster at batch 1 and 2x at batch 8, an fp32 training step's forward and backward 12%
    faster: BENCHMARKS.md). Under bfloat16 autocast, and with `explicit = True` (set by `explicit_attention`
    for the ONNX export), it spells the same arithmetic out op by op: faster in bf16 training, and the pattern
    `model.train.onnx_fusion` rewrites into onnxruntime's fused kernel."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_size = config.hidden_size // config.num_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_dropout)
        self.explicit = False

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_size).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        query, key, value = (
            self._heads(self.query(hidden)),
            self._heads(self.key(hidden)),
            self._heads(self.value(hidden)),
        )
        if self.explicit or torch.is_autocast_enabled("cpu"):  # bf16: SDPA's step is 18-31% slower
            # The 1/sqrt(d) scaling stays on the scores. Moving it to the [B, S, H] queries is the same
            # arithmetic but perturbs the int8 graph's dynamic quantisation: the bundled model's int8 FUNSD F1
            # went from 0.21 to 0.71 points below fp32 (BENCHMARKS.md, int8).
            scores = query @ key.transpose(-1, -2) / math.sqrt(self.head_size) + score_bias
            context = self.dropout(scores.softmax(dim=-1)) @ value
        else:
            dropout = self.dropout.p if self.training else 0.0
            context = F.scaled_dot_product_attention(
                query, key, value, attn_mask=score_bias, dropout_p=dropout
            )
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, self.num_heads * self.head_size)


@contextmanager
def explicit_attention(model: nn.Module) -> Iterator[None]:
    """Every `SelfAttention` in `model` spelled out op by op while the block runs (for the ONNX export)."""
    attentions = [module for module in model.modules() if isinstance(module, SelfAttention)]
    for attention in attentions:
        attention.explicit = True
    try:
        yield
    finally:
        for attention in attentions:
            attention.explicit = False


class AttentionOutput(nn.Module):
    def __init__(self, config: ModelConfig, in_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.self = SelfAttention(config)
        self.output = AttentionOutput(config, config.hidden_size)

    def forward(self, hidden: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(hidden, score_bias), hidden)


class Intermediate(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))


class Block(nn.Module):
    """One post-norm transformer layer (BERT layout)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = AttentionOutput(config, config.intermediate_size)

    def forward(self, hidden: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        attended = self.attention(hidden, score_bias)
        return self.output(self.intermediate(attended), attended)
