"""Where a training starts, resolved in one place for `docextract train` and `docextract pretrain`, training
runs through the API, the pre-training loop and the benchmarks: MiniLM's text stream, random weights (each
with a size preset), or a trained model folder (its config, tokenizer and input options: its weights learned
with them)."""

from dataclasses import dataclass, replace
from pathlib import Path

from model.artifact import TOKENIZER_FILE, WEIGHTS_FILE, ArtifactMeta, InputOptions
from model.config import ModelConfig, base_config, minilm_config, tiny_config
from model.train.minilm import minilm_tokenizer_path
from model.train.trainer import TrainOptions

FRESH_STARTS = ("minilm", "random")  # the starts that are not a model folder
SIZES = {"minilm": minilm_config, "base": base_config, "tiny": tiny_config}


@dataclass(frozen=True)
class StartPoint:
    init: str  # "minilm", "random" or a model folder, as `TrainOptions.init` takes it
    config: ModelConfig
    tokenizer: Path
    inputs: InputOptions

    def applied_to(self, options: TrainOptions) -> TrainOptions:
        """`options` starting here: this start's init and input options."""
        return replace(options, init=self.init, inputs=self.inputs)


def tokenizer_of(init: str) -> Path:
    """The tokenizer of a start: MiniLM's for "minilm" and "random", else the model folder's."""
    return minilm_tokenizer_path() if init in FRESH_STARTS else Path(init) / TOKENIZER_FILE


def preset_config(init: str, size: str) -> ModelConfig:
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, not {size!r}")
    if init == "minilm" and size != "minilm":
        raise ValueError("only the minilm size can start from MiniLM; start from random for the others")
    return SIZES[size]()


def resolve_start(init: str, size: str = "minilm") -> StartPoint:
    """The start `init` names: "minilm" or "random" (a model of the preset `size`, default input options),
    or a model folder holding trained weights (`size` is then the folder's own)."""
    if init in FRESH_STARTS:
        return StartPoint(init, preset_config(init, size), tokenizer_of(init), InputOptions())
    folder = Path(init)
    if not (folder / WEIGHTS_FILE).is_file():
        raise ValueError(f"{folder} has no trained weights ({WEIGHTS_FILE}) to start from")
    meta = ArtifactMeta.load(folder)
    return StartPoint(init, meta.config, tokenizer_of(init), meta.inputs)
