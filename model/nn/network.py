"""The multi-modal encoder and its heads: tensors in, tensors out (the exported graph has no Python logic
that depends on data beyond shapes).

Sequence layout: [text tokens (L)] + [visual tokens (G*G)]. Heads read the text positions.
"""

import torch
from torch import nn

from model.config import ModelConfig
from model.nn.layers import MASK_BIAS, Block, LayoutEmbeddings, SpatialBias, VisualBackbone

INITIALIZER_RANGE = 0.02


def init_weights(module: nn.Module) -> None:
    """BERT's initialisation: N(0, 0.02) for linear and embedding weights, zero biases, unit LayerNorm.
    (torch's default N(0, 1) embeddings would drown the pretrained word embeddings in layout noise.)"""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=INITIALIZER_RANGE)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class TextEmbeddings(nn.Module):
    """WordPiece token + 1-D position + segment embeddings (BERT names, loaded from MiniLM)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


def visual_grid_boxes(grid: int) -> torch.Tensor:
    """[G*G, 4] boxes of the visual grid cells on the 0-1000 grid, row by row."""
    edges = torch.div(torch.arange(grid + 1) * 1000, grid, rounding_mode="floor")
    rows = [
        [edges[col], edges[row], edges[col + 1], edges[row + 1]] for row in range(grid) for col in range(grid)
    ]
    return torch.tensor(rows, dtype=torch.long)


class LayoutLMv2Encoder(nn.Module):
    """Text + layout + visual embeddings and transformer layers with spatial-aware self-attention."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = TextEmbeddings(config)
        self.layout = LayoutEmbeddings(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        if config.use_visual:
            self.backbone = VisualBackbone(config)
            self.visual_proj = nn.Linear(self.backbone.out_channels, config.hidden_size)
            self.visual_segment = nn.Parameter(torch.zeros(config.hidden_size))
            self.visual_LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
            self.register_buffer("visual_bbox", visual_grid_boxes(config.visual_grid), persistent=False)
        self.spatial_bias = SpatialBias(config) if config.use_spatial_bias else None
        self.layers = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.apply(init_weights)

    def _text(self, input_ids: torch.Tensor, bbox: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        e = self.embeddings
        summed = (
            e.word_embeddings(input_ids)
            + e.position_embeddings(position_ids)
            + e.token_type_embeddings(torch.zeros_like(input_ids))
            + self.layout(bbox)
        )
        return self.dropout(e.LayerNorm(summed))

    def _visual(self, pixel_values: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        features = self.backbone(pixel_values).flatten(2).transpose(1, 2)  # [B, G*G, C]
        summed = (
            self.visual_proj(features)
            + self.embeddings.position_embeddings(position_ids)
            + self.layout(self.visual_bbox)
            + self.visual_segment
        )
        return self.dropout(self.visual_LayerNorm(summed))

    def forward(
        self,
        input_ids: torch.Tensor,
        bbox: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
    ) -> torch.Tensor:
        """[B, L] ids, [B, L, 4] boxes, [B, L] mask, [B, 3, S, S] pixels -> [B, L + G*G, H] states."""
        batch, length = input_ids.shape
        position_ids = torch.arange(length, device=input_ids.device).unsqueeze(0).expand(batch, length)
        hidden = self._text(input_ids, bbox, position_ids)
        mask = attention_mask
        if self.config.use_visual:
            grid_tokens = self.config.num_visual_tokens
            visual_positions = (
                torch.arange(grid_tokens, device=input_ids.device).unsqueeze(0).expand(batch, -1)
            )
            hidden = torch.cat([hidden, self._visual(pixel_values, visual_positions)], dim=1)
            position_ids = torch.cat([position_ids, visual_positions], dim=1)
            bbox = torch.cat([bbox, self.visual_bbox.unsqueeze(0).expand(batch, -1, -1)], dim=1)
            mask = torch.cat([mask, torch.ones_like(visual_positions)], dim=1)
        if self.spatial_bias is not None:
            score_bias = self.spatial_bias(position_ids, bbox, mask)
        else:
            score_bias = ((1 - mask.to(hidden.dtype)) * MASK_BIAS)[:, None, None, :]
        for layer in self.layers:
            hidden = layer(hidden, score_bias)
        return hidden


def gather_rows(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values [B, N, D], index [B, K] -> [B, K, D] (row index[b, k] of batch item b)."""
    return torch.gather(values, 1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


class RelationHead(nn.Module):
    """Biaffine scorer of (head, tail) entity pairs, LayoutXLM-style, plus explicit pair geometry.

    Entity representation: the encoder state of its first token concatenated with an embedding of its
    label; separate head and tail projections; score = h^T W t + w . [h; t; g] + b, where g embeds the
    pair's geometry features (model.relations.pair_geometry). Tensors in, tensors out: pairs are built and
    selected outside the graph.
    """

    def __init__(self, config: ModelConfig, num_labels: int, geometry_size: int, size: int = 128) -> None:
        super().__init__()
        label_size = 32
        in_size = config.hidden_size + label_size
        self.label_embeddings = nn.Embedding(num_labels, label_size)
        self.head_proj = nn.Sequential(nn.Linear(in_size, size), nn.GELU(), nn.Dropout(config.hidden_dropout))
        self.tail_proj = nn.Sequential(nn.Linear(in_size, size), nn.GELU(), nn.Dropout(config.hidden_dropout))
        self.geometry = nn.Sequential(nn.Linear(geometry_size, size), nn.GELU(), nn.Linear(size, size))
        self.bilinear = nn.Parameter(torch.zeros(size, size))
        self.linear = nn.Linear(3 * size, 1)
        self.apply(init_weights)

    def forward(
        self,
        entity_states: torch.Tensor,
        entity_labels: torch.Tensor,
        pair_index: torch.Tensor,
        pair_features: torch.Tensor,
    ) -> torch.Tensor:
        """[B, E, H] states, [B, E] label ids, [B, P, 2] (head, tail), [B, P, F] -> [B, P] link logits."""
        entities = torch.cat([entity_states, self.label_embeddings(entity_labels)], dim=-1)
        heads = gather_rows(self.head_proj(entities), pair_index[..., 0])
        tails = gather_rows(self.tail_proj(entities), pair_index[..., 1])
        geometry = self.geometry(pair_features)
        biaffine = ((heads @ self.bilinear) * tails).sum(-1)
        return biaffine + self.linear(torch.cat([heads, tails, geometry], dim=-1)).squeeze(-1)


class EntityTagger(nn.Module):
    """Encoder + BIO token classification head over the text positions, and optionally a relation head."""

    def __init__(
        self, config: ModelConfig, num_tags: int, num_labels: int = 0, geometry_size: int = 0
    ) -> None:
        super().__init__()
        self.encoder = LayoutLMv2Encoder(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.classifier = nn.Linear(config.hidden_size, num_tags)
        init_weights(self.classifier)
        self.relation_head = RelationHead(config, num_labels, geometry_size) if num_labels else None

    def states_and_logits(
        self,
        input_ids: torch.Tensor,
        bbox: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text-token states [B, L, H] and entity logits [B, L, num_tags]."""
        states = self.encoder(input_ids, bbox, attention_mask, pixel_values)[:, : input_ids.shape[1]]
        return states, self.classifier(self.dropout(states))

    def forward(
        self,
        input_ids: torch.Tensor,
        bbox: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
    ) -> torch.Tensor:
        """Entity logits [B, L, num_tags] for the text tokens."""
        return self.states_and_logits(input_ids, bbox, attention_mask, pixel_values)[1]


def use_threads(threads: int) -> None:
    """torch's intra-op threads in this process (training and export run on the CPU's cores)."""
    torch.set_num_threads(threads)


def device_for(local_rank: int) -> torch.device:
    """This process's GPU under torchrun (LOCAL_RANK) when there are GPUs, else the CPU."""
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
