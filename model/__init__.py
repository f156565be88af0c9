"""docextract model: data formats, features, the LayoutLMv2-style encoder, training and runtime.

This package never imports `service`. Modules listed in `TORCH_MODULES` need torch (the `train`
extra); every other module must import without it, because the serving path has no torch.
"""

TORCH_MODULES: frozenset[str] = frozenset(
    f"model.{name}"
    for name in (
        "layers",
        "network",
        "minilm",
        "checkpoint",
        "evaluate",
        "train",
        "relation_loss",
        "weight_average",
        "soup",
        "export",
        "pretrain",
        "pretrain_network",
        "recombined_pretraining",
    )
)
