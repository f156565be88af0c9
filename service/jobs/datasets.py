"""Training datasets uploaded as a zip of FUNSD-format data, unpacked safely and validated.

The archive is checked before anything is written: at most `max_dataset_members` members and
`max_dataset_unpacked_bytes` in total, no member compressed more than `max_dataset_ratio` times (zip
bombs), no absolute paths, drive letters, `..` parts or symlinks (path traversal), no encrypted members.
Members are then streamed out with their sizes counted again (headers can lie). The result must be
readable by `model.funsd.read_dataset` (`annotations/*.json` and `images/*`, at the top or in one folder).
"""

import lzma
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path, PurePosixPath

from model.config import LabelSet
from model.funsd import Document, FunsdFormatError, read_dataset
from service.errors import DatasetTooLargeError, InvalidDatasetError
from service.settings import Settings

CHUNK = 1 << 20
# What reading a broken zip raises: a bad directory or header, a member name flagged UTF-8 that is not
# (UnicodeDecodeError, a ValueError), corrupt deflate, bzip2 (OSError) or LZMA data, an unknown method.
UNREADABLE_ZIP = (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, zlib.error)
UNREADABLE_ZIP += (lzma.LZMAError,)
RATIO_MIN_BYTES = 1024  # tiny members compress by odd ratios and cannot be bombs
IGNORED_PREFIXES = ("__MACOSX/",)


def member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, None for entries to skip; InvalidDatasetError for unsafe names."""
    name = info.filename
    if name.startswith(IGNORED_PREFIXES) or info.is_dir():
        return None
    path = PurePosixPath(name)
    if "\\" in name or path.is_absolute() or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        raise InvalidDatasetError(f"unsafe path in the dataset zip: {name!r}")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InvalidDatasetError(f"the dataset zip holds a symbolic link: {name!r}")
    if info.flag_bits & 0x1:
        raise InvalidDatasetError(f"the dataset zip holds an encrypted member: {name!r}")
    return path


def check_archive(
    archive: zipfile.ZipFile, settings: Settings
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The members to unpack, after every limit and name check."""
    infos = archive.infolist()
    if len(infos) > settings.max_dataset_members:
        raise DatasetTooLargeError(
            f"the dataset zip has {len(infos)} members, the limit is {settings.max_dataset_members}"
        )
    total = sum(info.file_size for info in infos)
    if total > settings.max_dataset_unpacked_bytes:
        raise DatasetTooLargeError(
            f"the dataset unpacks to {total} bytes, the limit is {settings.max_dataset_unpacked_bytes}"
        )
    members = []
    for info in infos:
        path = member_path(info)
        if path is None:
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_MIN_BYTES and ratio > settings.max_dataset_ratio:
            raise DatasetTooLargeError(
                f"{info.filename!r} is compressed {ratio:.0f} times, "
                f"the limit is {settings.max_dataset_ratio:g}"
            )
        members.append((info, path))
    return members


def _chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's data, a chunk at a time; InvalidDatasetError when it cannot be read (a corrupt member)."""
    try:
        with archive.open(info) as source:
            while chunk := source.read(CHUNK):
                yield chunk
    except UNREADABLE_ZIP as exc:
        raise InvalidDatasetError(f"the dataset zip cannot be unpacked: {info.filename!r}: {exc}") from exc


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Stream one member out, counting its real size; returns the bytes written. Errors writing it (a full
    or read-only disk) are not the dataset's: they go to the caller as they are."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as sink:
        for chunk in _chunks(archive, info):
            written += len(chunk)
            if written > info.file_size or written > budget:
                raise DatasetTooLargeError(f"{info.filename!r} unpacks to more bytes than its header says")
            sink.write(chunk)
    return written


def dataset_root(folder: Path) -> Path:
    """`folder` itself, or its one subfolder, whichever holds `annotations/`."""
    if (folder / "annotations").is_dir():
        return folder
    children = [p for p in folder.iterdir() if p.is_dir()]
    if len(children) == 1 and (children[0] / "annotations").is_dir():
        return children[0]
    raise InvalidDatasetError(
        "the dataset zip has no annotations/ folder: expected annotations/*.json and images/* at its top "
        "level or inside one folder (FUNSD format)"
    )


def _inside(message: str, folder: Path) -> str:
    """`message` with the server's path to the unpacked dataset left out."""
    return message.replace(f"{folder}/", "").replace(str(folder), ".")


def validate(root: Path, folder: Path, max_page_pixels: int | None = None) -> list[Document]:
    """The dataset's documents, or InvalidDatasetError: not FUNSD format, no trainable labels, or (with
    `max_page_pixels`) an image over the service's pixel limit."""
    try:
        documents = read_dataset(root)
    except FunsdFormatError as exc:
        message = _inside(str(exc), folder)
        raise InvalidDatasetError(f"the dataset is not valid FUNSD format: {message}") from exc
    labels = sorted({label for document in documents for label in document.labels})
    try:
        LabelSet.from_labels(labels)
    except ValueError as exc:
        raise InvalidDatasetError(
            f"the dataset's entity labels {labels} leave nothing to learn: label entities with names such as "
            f"'question' and 'answer' (not BIO tags, not only 'other')"
        ) from exc
    for document in documents:
        if max_page_pixels is not None and document.width * document.height > max_page_pixels:
            raise DatasetTooLargeError(
                f"image {_inside(str(document.image_path), folder)} is {document.width}x{document.height} "
                f"pixels, the limit is {max_page_pixels} pixels per page"
            )
    return documents


def check_dataset_bytes(size: int, settings: Settings) -> None:
    """DatasetTooLargeError when a dataset zip of `size` bytes (or read of it so far) is over
    `max_dataset_bytes`: the one check of a dataset's size, whether it is being read or already in memory."""
    if size > settings.max_dataset_bytes:
        raise DatasetTooLargeError(
            f"the dataset zip has at least {size} bytes, the limit is {settings.max_dataset_bytes}"
        )


def open_archive(data: bytes, settings: Settings) -> zipfile.ZipFile:
    """The dataset zip, opened (its central directory read); DatasetTooLargeError, InvalidDatasetError."""
    check_dataset_bytes(len(data), settings)
    try:
        return zipfile.ZipFile(BytesIO(data))
    except UNREADABLE_ZIP as exc:
        raise InvalidDatasetError(f"the dataset is not a zip archive: {exc}") from exc


def unpack_dataset(data: bytes, folder: Path, settings: Settings) -> tuple[Path, list[Document]]:
    """Unpack a dataset zip into `folder` (created; removed again on any error) and validate it.
    Returns the dataset root and its documents."""
    archive = open_archive(data, settings)
    folder.mkdir(parents=True, exist_ok=False)
    try:
        with archive:
            budget = settings.max_dataset_unpacked_bytes
            for info, path in check_archive(archive, settings):
                budget -= copy_member(archive, info, folder.joinpath(*path.parts), budget)
        root = dataset_root(folder)
        return root, validate(root, folder, settings.max_page_pixels)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
