"""Reader for FUNSD-format datasets, with validation. Pure Python; no torch.

Layout of a dataset folder: `annotations/NAME.json` and `images/NAME.<png|jpg|jpeg|tif|tiff>`.
An annotation is `{"form": [{"id", "text", "label", "box", "words": [{"text", "box"}], "linking"}]}`
with pixel boxes `[x0, y0, x1, y1]` and links `[from_id, to_id]`.

Every problem raises `FunsdFormatError`, whose message names the file and, where there is one, the entity.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from model.boxes import BoxPx, is_valid_box

FUNSD_LABELS: frozenset[str] = frozenset({"header", "question", "answer", "other"})
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
ENTITY_KEYS: tuple[str, ...] = ("id", "text", "label", "box", "words", "linking")


class FunsdFormatError(ValueError):
    """A FUNSD-format file is missing, malformed or inconsistent."""

    def __init__(self, path: Path, message: str, entity_id: object | None = None) -> None:
        where = f"{path}" if entity_id is None else f"{path}, entity {entity_id}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.entity_id = entity_id


@dataclass(frozen=True)
class Word:
    text: str
    box_px: BoxPx


@dataclass(frozen=True)
class Entity:
    id: int
    label: str
    text: str
    box_px: BoxPx
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Document:
    """One annotated page."""

    name: str
    image_path: Path
    width: int
    height: int
    entities: tuple[Entity, ...]
    links: tuple[tuple[int, int], ...]  # unique (from_id, to_id) pairs, in first-seen order

    @property
    def labels(self) -> frozenset[str]:
        return frozenset(e.label for e in self.entities)


def find_image(images_dir: Path, stem: str) -> Path | None:
    """The image file for an annotation stem, or None."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (images_dir / f"{stem}{suffix}", images_dir / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _parse_box(raw: object, path: Path, entity_id: object, what: str, size: tuple[int, int]) -> BoxPx:
    if not isinstance(raw, list | tuple) or len(raw) != 4 or not all(isinstance(v, int | float) for v in raw):
        raise FunsdFormatError(path, f"{what} box must be 4 numbers [x0, y0, x1, y1], got {raw!r}", entity_id)
    x0, y0, x1, y1 = (float(v) for v in raw)
    if x1 < x0 or y1 < y0:
        raise FunsdFormatError(path, f"{what} box {list(raw)} has x1 < x0 or y1 < y0", entity_id)
    if not is_valid_box((x0, y0, x1, y1), *size):
        raise FunsdFormatError(
            path, f"{what} box {list(raw)} lies outside the {size[0]}x{size[1]} image", entity_id
        )
    return (x0, y0, x1, y1)


def _parse_words(raw: object, path: Path, entity_id: object, size: tuple[int, int]) -> tuple[Word, ...]:
    if not isinstance(raw, list):
        raise FunsdFormatError(path, "'words' must be a list", entity_id)
    words = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or "text" not in item or "box" not in item:
            raise FunsdFormatError(path, f"word {index} needs 'text' and 'box'", entity_id)
        if not isinstance(item["text"], str):
            raise FunsdFormatError(path, f"word {index} text must be a string", entity_id)
        words.append(Word(item["text"], _parse_box(item["box"], path, entity_id, f"word {index}", size)))
    return tuple(words)


def _parse_entity(
    raw: object, path: Path, size: tuple[int, int], labels: frozenset[str] | None
) -> tuple[Entity, list[Any]]:
    if not isinstance(raw, Mapping):
        raise FunsdFormatError(path, f"each entry of 'form' must be an object, got {type(raw).__name__}")
    entity_id = raw.get("id")
    missing = [key for key in ENTITY_KEYS if key not in raw]
    if missing:
        raise FunsdFormatError(path, f"missing keys {missing}", entity_id)
    if not isinstance(entity_id, int) or isinstance(entity_id, bool):
        raise FunsdFormatError(path, f"'id' must be an integer, got {entity_id!r}", entity_id)
    label = raw["label"]
    if not isinstance(label, str) or not label:
        raise FunsdFormatError(path, f"'label' must be a non-empty string, got {label!r}", entity_id)
    if labels is not None and label not in labels:
        raise FunsdFormatError(path, f"label {label!r} is not in the label set {sorted(labels)}", entity_id)
    if not isinstance(raw["linking"], list):
        raise FunsdFormatError(path, "'linking' must be a list of [from_id, to_id] pairs", entity_id)
    entity = Entity(
        id=entity_id,
        label=label,
        text=str(raw["text"]),
        box_px=_parse_box(raw["box"], path, entity_id, "entity", size),
        words=_parse_words(raw["words"], path, entity_id, size),
    )
    return entity, raw["linking"]


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _collect_links(
    path: Path, linkings: Iterable[tuple[int, list[Any]]], known_ids: set[int]
) -> tuple[tuple[int, int], ...]:
    links: dict[tuple[int, int], None] = {}
    for entity_id, linking in linkings:
        for pair in linking:
            if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(map(_is_id, pair)):
                raise FunsdFormatError(path, f"link {pair!r} must be [from_id, to_id] (integers)", entity_id)
            unknown = [x for x in pair if x not in known_ids]
            if unknown:
                raise FunsdFormatError(path, f"link {list(pair)} refers to unknown ids {unknown}", entity_id)
            if entity_id not in pair:
                raise FunsdFormatError(path, f"link {list(pair)} does not involve its entity", entity_id)
            links[(int(pair[0]), int(pair[1]))] = None
    return tuple(links)


def parse_annotation(
    payload: object, path: Path, image_path: Path, size: tuple[int, int], labels: frozenset[str] | None = None
) -> Document:
    """Validate an already-loaded annotation object for an image of `size` (width, height)."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("form"), list):
        raise FunsdFormatError(path, "top level must be an object with a 'form' list")
    entities: list[Entity] = []
    linkings: list[tuple[int, list[Any]]] = []
    for raw in payload["form"]:
        entity, linking = _parse_entity(raw, path, size, labels)
        if any(e.id == entity.id for e in entities):
            raise FunsdFormatError(path, "duplicate entity id", entity.id)
        entities.append(entity)
        linkings.append((entity.id, linking))
    links = _collect_links(path, linkings, {e.id for e in entities})
    return Document(path.stem, image_path, size[0], size[1], tuple(entities), links)


def annotation_of(document: Document) -> dict[str, Any]:
    """The FUNSD annotation object of a document (what `parse_annotation` reads back): each link is listed
    under both of its entities, as in FUNSD's files."""
    linking: dict[int, list[list[int]]] = {e.id: [] for e in document.entities}
    for head, tail in document.links:
        linking[head].append([head, tail])
        if tail != head:
            linking[tail].append([head, tail])
    return {
        "form": [
            {
                "id": e.id,
                "text": e.text,
                "label": e.label,
                "box": list(e.box_px),
                "words": [{"text": w.text, "box": list(w.box_px)} for w in e.words],
                "linking": linking[e.id],
            }
            for e in document.entities
        ]
    }


def read_document(annotation_path: Path, labels: frozenset[str] | None = None) -> Document:
    """Read and validate one annotation and find its image in the sibling `images/` folder."""
    annotation_path = Path(annotation_path)
    image_path = find_image(annotation_path.parent.parent / "images", annotation_path.stem)
    if image_path is None:
        raise FunsdFormatError(annotation_path, f"no image named {annotation_path.stem}{IMAGE_SUFFIXES}")
    try:
        payload = json.loads(annotation_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON, or a number too long to parse
        raise FunsdFormatError(annotation_path, f"cannot read JSON: {exc}") from exc
    except RecursionError as exc:
        raise FunsdFormatError(annotation_path, "cannot read JSON: nested too deeply") from exc
    try:
        with Image.open(image_path) as image:
            size = image.size
    except Exception as exc:  # Pillow raises many types: OSError, DecompressionBombError, ValueError (a PNG
        # text chunk or ICC profile over its size limit), SyntaxError, ...
        raise FunsdFormatError(image_path, f"cannot open image: {exc}") from exc
    return parse_annotation(payload, annotation_path, image_path, size, labels)


def read_dataset(root: Path, labels: frozenset[str] | None = None) -> list[Document]:
    """Read every annotation under `root/annotations`, sorted by name. Fails on the first problem."""
    annotations_dir = Path(root) / "annotations"
    if not annotations_dir.is_dir():
        raise FunsdFormatError(Path(root), "no 'annotations' folder")
    paths = sorted(annotations_dir.glob("*.json"))
    if not paths:
        raise FunsdFormatError(annotations_dir, "no *.json annotations")
    return [read_document(path, labels) for path in paths]
