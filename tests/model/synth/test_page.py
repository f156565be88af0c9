import hashlib
import json

from model.synth.page import page_seed, render_page
from tests.model.synth.checks import check_page


def _fingerprint(page) -> tuple[str, str]:
    annotation = json.dumps(page.annotation, sort_keys=True)
    return annotation, hashlib.sha256(page.image.tobytes()).hexdigest()


def test_same_seed_and_index_give_the_same_page(synth_sample):
    for index in (0, 3, 11):
        again = render_page(7, index)
        assert again.name == synth_sample[index].name
        assert _fingerprint(again) == _fingerprint(synth_sample[index])


def test_other_seed_or_index_gives_another_page(synth_sample):
    assert _fingerprint(render_page(8, 0)) != _fingerprint(synth_sample[0])
    assert _fingerprint(synth_sample[1]) != _fingerprint(synth_sample[0])
    assert len({page_seed(7, i) for i in range(1000)}) == 1000


def test_every_page_is_a_valid_funsd_annotation(synth_sample):
    for page in synth_sample:
        check_page(page)


def test_pages_look_like_funsd_scans(synth_sample):
    for page in synth_sample:
        assert page.image.mode == "L"
        assert 754 <= page.image.width <= 850 and 1.25 < page.image.height / page.image.width < 1.35
    labels = {e["label"] for page in synth_sample for e in page.annotation["form"]}
    assert labels == {"header", "question", "answer", "other"}
    links = [tuple(pair) for page in synth_sample for e in page.annotation["form"] for pair in e["linking"]]
    assert links, "no question -> answer links"


def test_templates_and_fonts_vary_across_a_sample(synth_sample):
    metas = [page.annotation["meta"] for page in synth_sample]
    templates = {m["template"] for m in metas}
    fonts = {f for m in metas for f in m["fonts"]}
    assert len(templates) >= 6, templates
    assert len({(m["template"], m["variant"]) for m in metas}) >= 10
    assert len(fonts) >= 10, fonts
    assert len({page.image.size for page in synth_sample}) >= 10


def test_empty_fields_and_multi_line_answers_occur(synth_sample):
    forms = [page.annotation["form"] for page in synth_sample]
    unanswered = [
        e
        for form in forms
        for e in form
        if e["label"] == "question" and not any(p[0] == e["id"] for p in e["linking"])
    ]
    assert unanswered
    multi_line = [
        e
        for form in forms
        for e in form
        if e["label"] == "answer" and len({w["box"][1] for w in e["words"]}) > 1
    ]
    assert multi_line
