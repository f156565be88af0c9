"""FUNSD test entity F1 of the served ONNX model, fp32 against int8 (issue 6: within 0.5 points).

Feeds each test form's gold words and boxes (and the page image) through `model.runtime.Runtime`, the
torch-free runtime the service uses, once per variant. An entity counts as correct when its label and its
exact set of words match a gold entity (the runtime reads words in its own geometric order, so entities are
compared as word sets, not as tag spans). Also reports how many words get the same tag from both variants.
Results go to `benchmarks/results/quantization.json`.

    .venv/bin/python benchmarks/quantization.py                       # the bundled model
    .venv/bin/python benchmarks/quantization.py --model runs/x/best    # a trained model folder
"""

import argparse
import json
import time
from pathlib import Path
from typing import Any

from PIL import Image

from model.funsd import Document, read_dataset
from model.metrics import scores
from model.runtime import PagePrediction, PageWords, Runtime
from service.registry import serving_model_dir
from service.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "quantization.json"
EntityKey = tuple[int, str, frozenset[int]]


def page_words(document: Document) -> tuple[PageWords, set[EntityKey]]:
    """The form's gold words as the runtime takes them, and its gold entities as word-id sets."""
    words, boxes, gold = [], [], set()
    for entity in document.entities:
        ids = frozenset(range(len(words), len(words) + len(entity.words)))
        words += [w.text for w in entity.words]
        boxes += [w.box_px for w in entity.words]
        if entity.label != "other" and ids:
            gold.add((0, entity.label, ids))
    image = Image.open(document.image_path).convert("RGB")
    return PageWords(words, boxes, document.width, document.height, image), gold


def predicted_entities(prediction: PagePrediction) -> set[EntityKey]:
    return {(0, e.label, frozenset(e.word_ids)) for e in prediction.entities}


def evaluate_variant(model_dir: Path, variant: str, documents: list[Document]) -> dict[str, Any]:
    runtime = Runtime.load(model_dir, variant, threads=2)  # type: ignore[arg-type]
    correct = predicted = gold_total = 0
    tags: list[tuple[str, ...]] = []
    started = time.perf_counter()
    for document in documents:
        page, gold = page_words(document)
        prediction = runtime.predict_pages([page])[0]
        found = predicted_entities(prediction)
        correct, predicted = correct + len(found & gold), predicted + len(found)
        gold_total += len(gold)
        tags.append(prediction.tags)
    result = scores(correct, predicted, gold_total).to_dict()
    return {"variant": variant, **result, "seconds": round(time.perf_counter() - started, 1), "tags": tags}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    args = parser.parse_args()
    serving = serving_model_dir(get_settings(), args.model)
    documents = read_dataset(args.data / "testing_data")
    fp32, int8 = (evaluate_variant(serving, v, documents) for v in ("fp32", "int8"))
    pages = zip(fp32.pop("tags"), int8.pop("tags"), strict=True)
    pairs = [(a, b) for x, y in pages for a, b in zip(x, y, strict=True)]
    record = {
        "model": str(args.model or "bundled"),
        "fp32": fp32,
        "int8": int8,
        "f1_difference_points": round(100 * (int8["f1"] - fp32["f1"]), 2),
        "word_tag_agreement": sum(a == b for a, b in pairs) / len(pairs),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
