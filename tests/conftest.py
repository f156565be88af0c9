"""Shared fixtures. Tests build their own data (synthetic forms); they never read ../shared."""

from pathlib import Path

import pytest

from tests.fixtures.forms import SyntheticPage, render_form, write_funsd_dataset


@pytest.fixture(scope="session")
def synthetic_pages() -> list[SyntheticPage]:
    """Four rendered forms with exact ground truth."""
    return [render_form(seed) for seed in range(4)]


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory: pytest.TempPathFactory, synthetic_pages: list[SyntheticPage]) -> Path:
    """The same forms written as a FUNSD-format folder (images/, annotations/)."""
    return write_funsd_dataset(synthetic_pages, tmp_path_factory.mktemp("funsd"))


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory: pytest.TempPathFactory, synthetic_dataset: Path):
    """A tiny model trained for a few epochs on two synthetic forms, exported to fp32 and int8 ONNX
    (`tests.exported.ExportedModel`). Used by the export, runtime and batcher tests."""
    from tests.exported import train_and_export  # torch: imported only by the tests that use it

    return train_and_export(synthetic_dataset, tmp_path_factory.mktemp("exported"))
