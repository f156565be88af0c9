"""Shared fixtures. Tests build their own data (synthetic forms); they never read ../shared."""

from pathlib import Path

import pytest

from model.synthetic import SyntheticPage, render_form, write_funsd_dataset


@pytest.fixture(scope="session")
def synthetic_pages() -> list[SyntheticPage]:
    """Four rendered forms with exact ground truth."""
    return [render_form(seed) for seed in range(4)]


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_pages: list[SyntheticPage]) -> Path:
    """The same forms written as a FUNSD-format folder (images/, annotations/)."""
    return write_funsd_dataset(synthetic_pages, tmp_path_factory.mktemp("funsd"))
