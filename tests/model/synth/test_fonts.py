import random
from pathlib import Path

import pytest

from model.synth.fonts import FontsNotFoundError, choose_fonts, discover_fonts


def test_the_debian_families_are_found():
    names = {family.name for family in discover_fonts()}
    assert "DejaVu Sans" in names
    assert all(family.regular.is_file() and family.bold.is_file() for family in discover_fonts())


def test_unknown_font_files_are_used_on_their_own(tmp_path: Path):
    source = discover_fonts()[0].regular
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / f"Odd{source.suffix}").write_bytes(source.read_bytes())
    families = discover_fonts((tmp_path,))
    assert [f.name for f in families] == ["Odd"]
    fonts = choose_fonts(random.Random(0), 2.0, families)
    assert fonts.files == (f"Odd{source.suffix}",)


def test_no_font_at_all_names_the_packages(tmp_path: Path):
    with pytest.raises(FontsNotFoundError, match="fonts-dejavu-core"):
        discover_fonts((tmp_path,))


def test_sizes_scale_with_the_render_scale():
    small = choose_fonts(random.Random(1), 1.0)
    large = choose_fonts(random.Random(1), 2.0)
    assert large.value.size == pytest.approx(2 * small.value.size, abs=1)
