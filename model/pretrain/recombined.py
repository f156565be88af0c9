"""Pre-training on recombined copies of the forms a fine-tuning will train on (`model.synth.recombine`):
the recipe of BENCHMARKS.md, "Recombined pages", as `model.train.fine_tune` runs it (for `docextract train`,
training runs and the benchmarks)."""

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from model.artifact import META_FILE
from model.config import ModelConfig
from model.funsd import Document
from model.synth.recombine import held_in, recombined_corpus
from model.train.trainer import TrainOptions, prepare_trainer

VALIDATION_FRACTION = 0.05  # of the recombined pages: the one epoch's "best" needs a validation score


def recombined_pages(documents: Sequence[Document], copies: int, fine_tuning: TrainOptions) -> list[Document]:
    """`copies` recombined copies of the forms `fine_tuning` trains on: its validation forms are neither
    recombined nor donors, so its best epoch is not chosen on layouts the pre-training saw."""
    kept = held_in(documents, fine_tuning.validation_seed, fine_tuning.validation_fraction)
    return recombined_corpus(kept, copies, fine_tuning.seed)


def finished_pretraining(out: Path) -> Path | None:
    """The model of an earlier pre-training into `out` that ended (its one pass done), if any: a resumed
    fine-tuning starts from it instead of pre-training again."""
    best = out / "best"
    return best if (best / META_FILE).is_file() else None


def pretrain_on_pages(
    pages: Sequence[Document],
    fine_tuning: TrainOptions,
    config: ModelConfig,
    tokenizer: Path,
    out: Path,
    on_progress: Callable[[dict[str, float]], None] | None = None,
) -> Path:
    """One pass over `pages` from `fine_tuning.init`, with its other settings; returns the model folder to
    fine-tune from."""
    options = replace(fine_tuning, epochs=1, validation_fraction=VALIDATION_FRACTION)
    prepare_trainer(list(pages), out, options, config, tokenizer, on_progress=on_progress).run()
    if not (out / "best" / META_FILE).is_file():
        raise RuntimeError("pre-training on recombined copies ended without a model")
    return out / "best"
