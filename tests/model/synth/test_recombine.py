import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.funsd import Document, Entity, Word
from model.synth.recombine import donor_pool, recombined_corpus, recombined_entity

LABELS = ("header", "question", "answer", "other")


def entity(entity_id: int, label: str, texts: list[str], top: float = 0.0) -> Entity:
    words = tuple(Word(t, (10.0 * i, top, 10.0 * i + 8, top + 10)) for i, t in enumerate(texts))
    box = (0.0, top, max(10.0 * len(texts) - 2, 1.0), top + 10)
    return Entity(entity_id, label, " ".join(texts), box, words)


def document(name: str, entities: list[Entity], links: tuple[tuple[int, int], ...] = ()) -> Document:
    return Document(name, Path(f"/images/{name}.png"), 1000, 1000, tuple(entities), links)


@st.composite
def documents(draw: st.DrawFn) -> list[Document]:
    count = draw(st.integers(1, 4))
    pages = []
    for page in range(count):
        sizes = draw(st.lists(st.tuples(st.sampled_from(LABELS), st.integers(0, 3)), min_size=1, max_size=6))
        entities = [
            entity(i, label, [f"p{page}e{i}w{j}" for j in range(n)], top=20.0 * i)
            for i, (label, n) in enumerate(sizes)
        ]
        pages.append(document(f"form{page}", entities, ((0, len(entities) - 1),)))
    return pages


@settings(max_examples=60, deadline=None)
@given(documents(), st.integers(1, 3), st.integers(0, 10_000))
def test_recombined_pages_keep_every_layout_and_take_texts_from_same_label_and_length(
    sources: list[Document], variants: int, seed: int
):
    pool = donor_pool(sources)
    corpus = recombined_corpus(sources, variants, seed)
    assert len(corpus) == variants * len(sources)
    assert len({page.name for page in corpus}) == len(corpus)
    by_name = {page.name: page for page in sources}
    for page in corpus:
        source = by_name[page.name.split("~r")[0]]
        assert (page.image_path, page.width, page.height, page.links) == (
            source.image_path,
            source.width,
            source.height,
            source.links,
        )
        for new, old in zip(page.entities, source.entities, strict=True):
            assert (new.id, new.label, new.box_px) == (old.id, old.label, old.box_px)
            assert [w.box_px for w in new.words] == [w.box_px for w in old.words]
            texts = tuple(w.text for w in new.words)
            assert new.text == " ".join(texts) or new == old
            if new.words:
                assert texts in pool[(old.label, len(old.words))]


def test_same_seed_same_corpus_and_seeds_differ():
    sources = [
        document(f"f{k}", [entity(0, "question", [f"Key{k}"]), entity(1, "answer", [f"v{k}", "x"], 20)])
        for k in range(12)
    ]
    first = recombined_corpus(sources, 2, seed=3, keep=0.0)
    assert first == recombined_corpus(sources, 2, seed=3, keep=0.0)
    assert first != recombined_corpus(sources, 2, seed=4, keep=0.0)
    first_pass = zip(first[:12], sources, strict=True)
    pairs = [
        (new, old) for page, src in first_pass for new, old in zip(page.entities, src.entities, strict=True)
    ]
    assert [page.name for page in first[:12]] == [f"{source.name}~r0" for source in sources]
    assert sum(new.text != old.text for new, old in pairs) > 12  # most of the 24 entities changed text


def test_keep_one_changes_nothing_and_no_donor_keeps_the_entity():
    lonely = entity(5, "header", ["ONLY", "HEADER", "HERE"])
    rng = random.Random(0)
    assert recombined_entity(lonely, {("header", 2): [("A", "B")]}, rng, keep=0.0) == lonely
    source = document("f", [entity(0, "question", ["Name:"]), entity(1, "answer", ["Ann"], 20)])
    (page,) = recombined_corpus([source], 1, seed=1, keep=1.0)
    assert page.entities == source.entities and page.name == "f~r0"


@pytest.mark.parametrize(("variants", "keep"), [(0, 0.1), (1, -0.1), (1, 1.5)])
def test_bad_arguments_are_refused(variants: int, keep: float):
    with pytest.raises(ValueError):
        recombined_corpus([document("f", [entity(0, "other", ["x"])])], variants, seed=0, keep=keep)
