"""Synthetic pages on real layouts: each entity's words swapped for another form's entity of the same
label and length. Pure Python; no torch.

The layout (word boxes, entity boxes, labels, links, the page image) stays that of the source form; only
the text moves. A model pre-trained on such pages sees a form's real geometry and label conventions with
text it cannot have memorised together with that geometry.
"""

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from model.funsd import Document, Entity, Word

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
