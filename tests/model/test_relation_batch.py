from pathlib import Path

import numpy as np

from model.config import FUNSD_ENTITY_LABELS, LabelSet
from model.dataset import document_example
from model.features import encode_words, load_tokenizer
from model.funsd import read_dataset
from model.relation_batch import (
    PAD_TARGET,
    collate_relations,
    gold_entities,
    oriented_links,
    window_relations,
)
from model.relations import RelationSchema
from model.train.minilm import minilm_tokenizer_path

LABELS = LabelSet(FUNSD_ENTITY_LABELS)
QA = RelationSchema((("question", "answer"),))


def test_window_relations_find_every_gold_link(synthetic_dataset: Path):
    document = read_dataset(synthetic_dataset)[0]
    example = document_example(document, LABELS, "reading", "word")
    tokenizer = load_tokenizer(minilm_tokenizer_path())
    (window,) = encode_words(tokenizer, example.words, example.boxes, example.tags, 512, 128)
    inputs = window_relations(window, example, QA, LABELS)
    gold = oriented_links(example, QA)
    assert gold and inputs.targets.sum() == len(gold)
    linked = {
        (inputs.entity_ids[h], inputs.entity_ids[t])
        for (h, t), y in zip(inputs.pairs, inputs.targets, strict=True)
        if y
    }
    assert linked == gold
    # each entity state is read at its first word's first sub-token
    group = gold_entities(example, LABELS)
    assert window.word_index[inputs.entity_positions].tolist() == group.first_words.tolist()


def test_windows_split_entities_between_them(synthetic_dataset: Path):
    document = read_dataset(synthetic_dataset)[1]
    example = document_example(document, LABELS, "reading", "word")
    tokenizer = load_tokenizer(minilm_tokenizer_path())
    windows = encode_words(tokenizer, example.words, example.boxes, example.tags, 64, 16)
    per_window = [window_relations(w, example, QA, LABELS) for w in windows]
    assert len(windows) > 2
    # overlapping windows may share entities; together they hold every one
    assert {i for r in per_window for i in r.entity_ids} == set(gold_entities(example, LABELS).ids)
    assert all(len(r.entity_ids) < len(gold_entities(example, LABELS).ids) for r in per_window)


def test_collate_pads_pairs_with_the_pad_target(synthetic_dataset: Path):
    document = read_dataset(synthetic_dataset)[0]
    example = document_example(document, LABELS, "reading", "word")
    tokenizer = load_tokenizer(minilm_tokenizer_path())
    windows = encode_words(tokenizer, example.words, example.boxes, example.tags, 64, 16)
    items = [window_relations(w, example, QA, LABELS) for w in windows[:3]]
    batch = collate_relations(items)
    pairs = max(1, *(len(i.pairs) for i in items))
    assert batch["pair_index"].shape == (3, pairs, 2)
    for row, item in enumerate(items):
        assert np.all(batch["pair_targets"][row, len(item.pairs) :] == PAD_TARGET)
