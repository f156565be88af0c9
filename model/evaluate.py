"""Torch inference over examples and entity-level evaluation (`docextract evaluate`)."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer

from model.artifact import TOKENIZER_FILE, ArtifactMeta
from model.checkpoint import load_model
from model.dataset import PageExample, document_example
from model.decode import merge_window_logits, tags_to_strings
from model.features import SpecialTokens, Window, collate, encode_words, load_tokenizer, page_pixels
from model.funsd import read_dataset
from model.metrics import EntityReport, entity_scores
from model.network import EntityTagger


@dataclass(frozen=True)
class EncodedPage:
    """An example cut into windows, with its page pixels (computed once)."""

    example: PageExample
    windows: list[Window]
    pixels: np.ndarray


def encode_page(example: PageExample, tokenizer: Tokenizer, meta_inputs, image_size: int) -> EncodedPage:
    windows = encode_words(
        tokenizer,
        example.words,
        example.boxes,
        example.tags,
        meta_inputs.max_tokens,
        meta_inputs.overlap_tokens,
    )
    image = None
    if example.image_path is not None:
        with Image.open(example.image_path) as opened:
            image = opened.convert("RGB")
    return EncodedPage(example, windows, page_pixels(image, image_size))


def as_tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(array) for name, array in arrays.items()}


@torch.no_grad()
def predict_word_logits(
    model: EntityTagger, page: EncodedPage, pad_id: int, batch_size: int = 8
) -> np.ndarray:
    """Per-word logits [N, T] for one page, windows merged."""
    model.eval()
    logits: list[np.ndarray] = []
    for start in range(0, len(page.windows), batch_size):
        chunk = page.windows[start : start + batch_size]
        batch = as_tensors(collate(chunk, [page.pixels] * len(chunk), pad_id))
        output = model(**batch).float().numpy()
        logits.extend(output[row, : len(window.input_ids)] for row, window in enumerate(chunk))
    return merge_window_logits([w.word_index for w in page.windows], logits, len(page.example.words))


def evaluate_pages(
    model: EntityTagger, pages: Sequence[EncodedPage], meta: ArtifactMeta, pad_id: int
) -> EntityReport:
    """Entity-level scores of the model on encoded pages (seqeval-style exact spans over words)."""
    gold, predicted = [], []
    for page in pages:
        tags = predict_word_logits(model, page, pad_id).argmax(-1) if page.example.words else np.zeros(0, int)
        gold.append(tags_to_strings(page.example.tags, meta.label_set))
        predicted.append(tags_to_strings(tags, meta.label_set))
    return entity_scores(gold, predicted)


def evaluate_model_dir(model_dir: Path, data_dir: Path, word_order: str | None = None) -> EntityReport:
    """Load a saved model and score it on a FUNSD-format folder with the model's own input options
    (or another word order, e.g. 'annotation' for the papers' protocol)."""
    model, meta = load_model(model_dir)
    tokenizer = load_tokenizer(Path(model_dir) / TOKENIZER_FILE)
    order = word_order or meta.inputs.word_order
    documents = read_dataset(data_dir)
    examples = [document_example(d, meta.label_set, order, meta.inputs.box_level) for d in documents]  # type: ignore[arg-type]
    pages = [encode_page(e, tokenizer, meta.inputs, meta.config.image_size) for e in examples]
    return evaluate_pages(model, pages, meta, SpecialTokens.of(tokenizer).pad)
