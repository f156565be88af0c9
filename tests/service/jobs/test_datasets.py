"""Dataset zips are unpacked safely (limits, traversal, links, bombs) and validated as FUNSD format."""

import io
import json
import stat
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from service.errors import DatasetTooLargeError, InvalidDatasetError
from service.jobs.datasets import unpack_dataset
from service.settings import Settings


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def zip_members(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_a_funsd_zip_unpacks_and_validates(synthetic_dataset: Path, settings: Settings, tmp_path: Path):
    root, documents = unpack_dataset(zip_folder(synthetic_dataset), tmp_path / "out", settings)
    assert root == tmp_path / "out" and len(documents) == 4
    assert (root / "annotations").is_dir() and (root / "images").is_dir()


def test_the_data_may_sit_in_one_top_folder(synthetic_dataset: Path, settings: Settings, tmp_path: Path):
    root, documents = unpack_dataset(zip_folder(synthetic_dataset, "forms/"), tmp_path / "out", settings)
    assert root == tmp_path / "out" / "forms" and len(documents) == 4


@pytest.mark.parametrize(
    "name", ["../evil.json", "/etc/evil.json", "annotations/../../evil.json", "C:/evil.json", "a\\..\\b"]
)
def test_unsafe_paths_are_refused_and_nothing_is_left(name: str, settings: Settings, tmp_path: Path):
    with pytest.raises(InvalidDatasetError, match="unsafe path"):
        unpack_dataset(zip_members({name: b"{}"}), tmp_path / "out", settings)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.json").exists()


def test_symbolic_links_are_refused(settings: Settings, tmp_path: Path):
    with pytest.raises(InvalidDatasetError, match="symbolic link"):
        unpack_dataset(zip_members({}, symlink="annotations/link.json"), tmp_path / "out", settings)


def test_a_zip_bomb_is_refused_by_its_compression_ratio(settings: Settings, tmp_path: Path):
    with pytest.raises(DatasetTooLargeError, match="compressed"):
        unpack_dataset(zip_members({"annotations/a.json": b"\0" * 5_000_000}), tmp_path / "out", settings)


def test_member_count_and_unpacked_size_limits(tmp_path: Path):
    many = zip_members({f"annotations/{n}.json": b"{}" for n in range(5)})
    with pytest.raises(DatasetTooLargeError, match="5 members"):
        unpack_dataset(many, tmp_path / "a", Settings(data_dir=tmp_path, max_dataset_members=4))
    big = zip_members({"annotations/a.json": bytes(range(256)) * 100})
    with pytest.raises(DatasetTooLargeError, match="unpacks to 25600 bytes"):
        unpack_dataset(big, tmp_path / "b", Settings(data_dir=tmp_path, max_dataset_unpacked_bytes=25_000))
    with pytest.raises(DatasetTooLargeError, match="the limit is 10"):
        unpack_dataset(big, tmp_path / "c", Settings(data_dir=tmp_path, max_dataset_bytes=10))


def test_not_a_zip(settings: Settings, tmp_path: Path):
    with pytest.raises(InvalidDatasetError, match="not a zip"):
        unpack_dataset(b"%PDF-1.4 not a zip", tmp_path / "out", settings)


def test_invalid_funsd_data_names_the_file_and_entity(settings: Settings, tmp_path: Path):
    entity = {"id": 7, "text": "x", "label": "question", "box": [0, 0, 1], "words": [], "linking": []}
    image = io.BytesIO()
    Image.new("L", (20, 20), 255).save(image, "PNG")
    files = {"annotations/a.json": json.dumps({"form": [entity]}).encode(), "images/a.png": image.getvalue()}
    with pytest.raises(InvalidDatasetError) as raised:
        unpack_dataset(zip_members(files), tmp_path / "out", settings)
    detail = raised.value.detail
    assert "annotations/a.json, entity 7" in detail and "box" in detail and str(tmp_path) not in detail
    assert not (tmp_path / "out").exists()


def test_a_zip_without_annotations(settings: Settings, tmp_path: Path):
    with pytest.raises(InvalidDatasetError, match="no annotations/ folder"):
        unpack_dataset(zip_members({"readme.txt": b"hello"}), tmp_path / "out", settings)
