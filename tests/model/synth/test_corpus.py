import hashlib
import json
from pathlib import Path

import pytest

from model.funsd import read_dataset
from model.synth.corpus import Progress, write_corpus


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_worker_count_does_not_change_the_corpus(tmp_path: Path):
    write_corpus(tmp_path / "one", 6, seed=3, workers=1)
    write_corpus(tmp_path / "two", 6, seed=3, workers=2)
    one, two = _digests(tmp_path / "one"), _digests(tmp_path / "two")
    assert len(one) == 6 * 2 + 1 and one == two


def test_the_corpus_is_a_funsd_folder_and_resumes(tmp_path: Path):
    seen: list[Progress] = []
    first = write_corpus(tmp_path, 3, seed=5, workers=1, on_progress=seen.append)
    assert (first.written, first.skipped) == (3, 0) and seen[-1].done == 3
    documents = read_dataset(tmp_path, labels=frozenset({"header", "question", "answer", "other"}))
    assert [d.name for d in documents] == ["synth_0000000", "synth_0000001", "synth_0000002"]
    annotation = tmp_path / "annotations" / "synth_0000001.json"
    before = annotation.read_bytes()
    annotation.unlink()
    second = write_corpus(tmp_path, 4, seed=5, workers=1)
    assert (second.written, second.skipped) == (2, 2)
    assert annotation.read_bytes() == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_other_settings_into_the_same_folder_are_refused(tmp_path: Path):
    write_corpus(tmp_path, 1, seed=5, workers=1)
    assert json.loads((tmp_path / "synth.json").read_text())["seed"] == 5
    with pytest.raises(ValueError, match="other settings"):
        write_corpus(tmp_path, 1, seed=6, workers=1)
    with pytest.raises(ValueError, match="unknown label schema"):
        write_corpus(tmp_path / "x", 1, schema="nope")
