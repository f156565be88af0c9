"""Synthetic pages on real layouts: each entity's words swapped for another form's entity of the same
label and length. Pure Python; no torch.

The layout (word boxes, entity boxes, labels, links, the page image) stays that of the source form; only
the text moves. A model pre-trained on such pages sees a form's real geometry and label conventions with
text it cannot have memorised together with that geometry.
"""

import json
import os
import random
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from model.dataset import split_validation
from model.funsd import Document, Entity, Word, annotation_of, read_dataset

Donors = dict[tuple[str, int], list[tuple[str, ...]]]


def donor_pool(documents: Sequence[Document]) -> Donors:
    """Every entity's word texts, keyed by (label, number of words)."""
    pool: Donors = defaultdict(list)
    for document in documents:
        for entity in document.entities:
            if entity.words:
                pool[(entity.label, len(entity.words))].append(tuple(w.text for w in entity.words))
    return dict(pool)


def recombined_entity(entity: Entity, donors: Donors, rng: random.Random, keep: float) -> Entity:
    """`entity` with its words' texts replaced by a donor's of the same label and length (boxes kept);
    unchanged with probability `keep`, or when no donor fits."""
    candidates = donors.get((entity.label, len(entity.words)))
    if not candidates or rng.random() < keep:
        return entity
    texts = rng.choice(candidates)
    words = tuple(Word(text, word.box_px) for text, word in zip(texts, entity.words, strict=True))
    return replace(entity, text=" ".join(texts), words=words)


def recombined_page(
    document: Document, donors: Donors, rng: random.Random, name: str, keep: float
) -> Document:
    entities = tuple(recombined_entity(e, donors, rng, keep) for e in document.entities)
    return replace(document, name=name, entities=entities)


def recombined_corpus(
    documents: Sequence[Document], variants: int, seed: int, keep: float = 0.1
) -> list[Document]:
    """`variants` recombined pages per document, named `<name>~r<k>`; texts come only from `documents`."""
    if variants < 1:
        raise ValueError(f"variants must be at least 1, got {variants}")
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    donors = donor_pool(documents)
    rng = random.Random(seed)
    return [
        recombined_page(document, donors, rng, f"{document.name}~r{k}", keep)
        for k in range(variants)
        for document in documents
    ]


def held_in(documents: Sequence[Document], split_seed: int, fraction: float = 0.1) -> list[Document]:
    """The documents `docextract train --split-seed split_seed` trains on (its validation forms left out)."""
    kept, _ = split_validation([d.name for d in documents], fraction, split_seed)
    return [documents[i] for i in kept]


def write_recombined(
    source: Path, out: Path, variants: int, seed: int, leave_out_split_seed: int | None = None
) -> int:
    """Write the recombined corpus of the FUNSD-format folder `source` to `out` (annotations/, images/ as
    hard links to the source images where the file system allows, else copies); returns the page count.
    With `leave_out_split_seed`, the forms a later `docextract train --split-seed` would hold out for
    validation are neither recombined nor donors. Refuses an `out` that is not empty (the source itself, or an
    earlier corpus whose pages would mix with these)."""
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty: recombined pages go to a new folder")
    documents = read_dataset(source)
    if leave_out_split_seed is not None:
        documents = held_in(documents, leave_out_split_seed)
    pages = recombined_corpus(documents, variants, seed)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    for page in pages:
        _link_or_copy(page.image_path, out / "images" / f"{page.name}{page.image_path.suffix}")
        text = json.dumps(annotation_of(page), ensure_ascii=False)
        (out / "annotations" / f"{page.name}.json").write_text(text, encoding="utf-8")
    return len(pages)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
