"""The pre-training network: the encoder with LayoutLMv2's three heads (MVLM, TIA, TIM), their losses, its
initialisation and optimiser parameter groups. Needs torch."""

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from model.config import ModelConfig
from model.features import IGNORE_INDEX
from model.nn.network import LayoutLMv2Encoder, init_weights
from model.train.checkpoint import load_model
from model.train.minilm import load_minilm_text_stream, name_mapping

OBJECTIVES = ("mvlm", "tia", "tim")


class LayoutLMv2ForPretraining(nn.Module):
    """The encoder with an MLM head (tied to the word embeddings), a per-token TIA head and a TIM head on
    the first token ([CLS])."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not config.use_visual:
            raise ValueError("pre-training needs the visual stream (use_visual=True)")
        hidden = config.hidden_size
        self.encoder = LayoutLMv2Encoder(config)
        self.mlm_transform = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        )
        self.mlm_bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.tia_head = nn.Linear(hidden, 1)
        self.tim_head = nn.Linear(hidden, 1)
        for module in (self.mlm_transform, self.tia_head, self.tim_head):
            module.apply(init_weights)

    def forward(
        self,
        input_ids: torch.Tensor,
        bbox: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        mlm_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MLM logits [M, V] at the M masked positions (row-major), TIA logits [B, L], TIM logits [B]."""
        states = self.encoder(input_ids, bbox, attention_mask, pixel_values)[:, : input_ids.shape[1]]
        masked = self.mlm_transform(states[mlm_labels != IGNORE_INDEX])
        mlm = masked @ self.encoder.embeddings.word_embeddings.weight.T + self.mlm_bias
        return mlm, self.tia_head(states).squeeze(-1), self.tim_head(states[:, 0]).squeeze(-1)


def _mean_or_zero(losses: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """The mean, or a zero that keeps `anchor` in the graph when there is nothing to score."""
    return losses.mean() if losses.numel() else anchor.sum() * 0.0


def pretrain_losses(
    outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Cross-entropy over the vocabulary at masked tokens; binary cross-entropy for TIA and TIM."""
    mlm_logits, tia_logits, tim_logits = outputs
    mlm_targets = batch["mlm_labels"][batch["mlm_labels"] != IGNORE_INDEX]
    mvlm = F.cross_entropy(mlm_logits, mlm_targets, reduction="none")
    scored = batch["tia_labels"] != IGNORE_INDEX
    tia = F.binary_cross_entropy_with_logits(
        tia_logits[scored], batch["tia_labels"][scored].float(), reduction="none"
    )
    tim = F.binary_cross_entropy_with_logits(tim_logits, batch["tim_labels"].float())
    return {"mvlm": _mean_or_zero(mvlm, mlm_logits), "tia": _mean_or_zero(tia, tia_logits), "tim": tim}


def weighted_total(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """Sum of each objective's loss times its weight."""
    return torch.stack([weights[name] * losses[name] for name in OBJECTIVES]).sum()


def parameter_groups(
    model: LayoutLMv2ForPretraining, lr: float, lr_new: float, weight_decay: float, text_pretrained: bool
) -> list[dict]:
    """Text-stream parameters at `lr` (when `text_pretrained`), new ones at `lr_new`; no decay on norms and
    biases."""
    pretrained = {f"encoder.{name}" for name in name_mapping(model.encoder.config.num_layers)}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        no_decay = parameter.ndim < 2 or "LayerNorm" in name or name.startswith("mlm_transform.2")
        groups.setdefault((name in pretrained and text_pretrained, no_decay), []).append(parameter)
    return [
        {
            "params": params,
            "lr": lr if old else lr_new,
            "weight_decay": 0.0 if nd else weight_decay,
        }
        for (old, nd), params in groups.items()
    ]


def initial_model(config: ModelConfig, init: str) -> LayoutLMv2ForPretraining:
    """A pre-training model whose encoder starts from MiniLM, random weights, or a saved model."""
    model = LayoutLMv2ForPretraining(config)
    if init == "minilm":
        load_minilm_text_stream(model.encoder)
    elif init != "random":
        source, _ = load_model(Path(init))
        model.encoder.load_state_dict(source.encoder.state_dict())
    return model
