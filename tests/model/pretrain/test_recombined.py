from pathlib import Path

from model.dataset import split_validation
from model.funsd import read_dataset
from model.pretrain.recombined import recombined_pages
from model.train.trainer import TrainOptions


def test_recombined_pages_copy_only_the_forms_the_fine_tuning_trains_on(synthetic_dataset: Path):
    documents = read_dataset(synthetic_dataset)
    options = TrainOptions(validation_fraction=0.25, seed=3)
    _, validation = split_validation([d.name for d in documents], 0.25, options.validation_seed)
    held_out = {documents[i].name for i in validation}
    pages = recombined_pages(documents, 3, options)
    sources = {page.name.split("~r")[0] for page in pages}
    assert held_out and not sources & held_out
    assert len(pages) == 3 * (len(documents) - len(held_out))
    held_out_words = {w.text for d in documents if d.name in held_out for e in d.entities for w in e.words}
    kept_words = {w.text for d in documents if d.name not in held_out for e in d.entities for w in e.words}
    page_words = {w.text for p in pages for e in p.entities for w in e.words}
    assert not page_words & (held_out_words - kept_words)  # no donor words from held-out forms
