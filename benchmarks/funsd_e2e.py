"""End-to-end FUNSD benchmark: the whole serving pipeline (real tesseract OCR, ONNX model) on test images.

Every page goes through `service.pipeline.run_pipeline` exactly as an upload would (image bytes in, JSON
result out), and the result is scored against the FUNSD annotation:

    OCR word recall   gold words found by OCR: box IoU >= 0.5 and the same normalised text (also reported
                      with any box overlap, which separates FUNSD's loose word boxes from misread text)
    entity F1         predicted entities matched one-to-one to gold ones with the same label, box IoU >= 0.5
                      and nearly the same text (case, whitespace and punctuation ignored, a small edit
                      distance allowed), micro and per label
    key-value F1      predicted key-value pairs whose key and value texts both match a gold linked
                      question -> answer pair (same text rule)
    speed             pages per second and milliseconds per page in each stage (model loading excluded)

    .venv/bin/python benchmarks/funsd_e2e.py --limit 2
    .venv/bin/python benchmarks/funsd_e2e.py --model data/models/my-model --variant fp32

Results go to `benchmarks/results/funsd_e2e.json`; a markdown table is printed.
"""

import argparse
import json
import os
import platform
import re
import subprocess
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from model.funsd import Document, read_dataset
from service.pipeline import STAGES, run_pipeline
from service.registry import serving_model_dir
from service.schemas import ExtractionResult, ExtractOptions
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "funsd" / "testing_data"
RESULTS = ROOT / "benchmarks" / "results" / "funsd_e2e.json"
MIN_IOU = 0.5
EDIT_SHARE = 0.2  # texts match when at most this share of the longer one's characters differ
G = TypeVar("G")
P = TypeVar("P")


def normalise(text: str) -> str:
    """Lower case, compatibility-normalised, punctuation dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in text)
    return re.sub(r"\s+", " ", text).strip()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def texts_match(a: str, b: str) -> bool:
    """Same text after `normalise`, allowing a small edit distance (OCR slips) on longer texts."""
    a, b = normalise(a), normalise(b)
    if a == b:
        return True
    allowed = int(EDIT_SHARE * max(len(a), len(b)))
    return allowed > 0 and abs(len(a) - len(b)) <= allowed and edit_distance(a, b) <= allowed


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    width, height = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_count(gold: Sequence[G], predicted: Sequence[P], score: Callable[[G, P], float | None]) -> int:
    """Greedy one-to-one matching, best-scoring pairs first; `score` is None for pairs that do not match."""
    pairs = []
    for g, gold_item in enumerate(gold):
        for p, predicted_item in enumerate(predicted):
            value = score(gold_item, predicted_item)
            if value is not None:
                pairs.append((value, g, p))
    used_gold, used_predicted = set(), set()
    for _, g, p in sorted(pairs, reverse=True):
        if g not in used_gold and p not in used_predicted:
            used_gold.add(g)
            used_predicted.add(p)
    return len(used_gold)


@dataclass
class Counts:
    """Matched, predicted and gold counts of one kind of item; precision, recall, F1."""

    matched: int = 0
    predicted: int = 0
    gold: int = 0

    def add(self, matched: int, predicted: int, gold: int) -> None:
        self.matched, self.predicted, self.gold = (
            self.matched + matched,
            self.predicted + predicted,
            self.gold + gold,
        )

    def scores(self) -> dict[str, float | int]:
        precision = self.matched / self.predicted if self.predicted else 0.0
        recall = self.matched / self.gold if self.gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": self.gold,
            "predicted": self.predicted,
        }


@dataclass
class Tally:
    """Everything the benchmark adds up over pages."""

    words: Counts = field(default_factory=Counts)
    words_loose: Counts = field(default_factory=Counts)  # same text, boxes merely overlapping
    entities: dict[str, Counts] = field(default_factory=dict)
    key_values: Counts = field(default_factory=Counts)
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys([*STAGES, "total"], 0.0))
    pages: int = 0
    failed_pages: int = 0

    def entity_micro(self) -> Counts:
        micro = Counts()
        for counts in self.entities.values():
            micro.add(counts.matched, counts.predicted, counts.gold)
        return micro


def score_words(document: Document, result: ExtractionResult, tally: Tally) -> None:
    gold = [w for e in document.entities for w in e.words if normalise(w.text)]
    predicted = [w for page in result.pages for w in page.words]

    def scorer(min_iou: float) -> Callable[[Any, Any], float | None]:
        def score(g: Any, p: Any) -> float | None:
            overlap = iou(g.box_px, p.box)
            return overlap if overlap >= min_iou and normalise(g.text) == normalise(p.text) else None

        return score

    tally.words.add(match_count(gold, predicted, scorer(MIN_IOU)), len(predicted), len(gold))
    tally.words_loose.add(match_count(gold, predicted, scorer(1e-9)), len(predicted), len(gold))


def score_entities(document: Document, result: ExtractionResult, tally: Tally) -> None:
    predicted = [e for page in result.pages for e in page.entities]
    gold = [e for e in document.entities if normalise(e.text)]
    for label in sorted({e.label for e in gold} | {e.label for e in predicted}):
        gold_l = [e for e in gold if e.label == label]
        predicted_l = [e for e in predicted if e.label == label]

        def score(g: Any, p: Any) -> float | None:
            overlap = iou(g.box_px, p.box)
            return overlap if overlap >= MIN_IOU and texts_match(g.text, p.text) else None

        matched = match_count(gold_l, predicted_l, score)
        tally.entities.setdefault(label, Counts()).add(matched, len(predicted_l), len(gold_l))


def gold_key_values(document: Document) -> list[tuple[str, str]]:
    """(question text, answer text) of every linked question-answer pair, whichever way it was linked."""
    by_id = {e.id: e for e in document.entities}
    pairs: dict[tuple[int, int], tuple[str, str]] = {}
    for a, b in document.links:
        first, second = by_id[a], by_id[b]
        if (first.label, second.label) == ("answer", "question"):
            first, second = second, first
        if (first.label, second.label) == ("question", "answer") and normalise(second.text):
            pairs[(first.id, second.id)] = (first.text, second.text)
    return list(pairs.values())


def score_key_values(document: Document, result: ExtractionResult, tally: Tally) -> None:
    gold = gold_key_values(document)
    predicted = [(kv.key, kv.value) for kv in result.key_values]

    def score(g: tuple[str, str], p: tuple[str, str]) -> float | None:
        return 1.0 if texts_match(g[0], p[0]) and texts_match(g[1], p[1]) else None

    tally.key_values.add(match_count(gold, predicted, score), len(predicted), len(gold))


def run_page(document: Document, runtime: Any, settings: Settings, tally: Tally) -> None:
    result = run_pipeline(document.image_path.read_bytes(), ExtractOptions(), settings, runtime).result
    tally.pages += len(result.pages)
    tally.failed_pages += sum(page.status == "failed" for page in result.pages)
    for stage, value in result.timings_ms.model_dump().items():
        tally.stage_ms[stage] += value
    score_words(document, result, tally)
    score_entities(document, result, tally)
    score_key_values(document, result, tally)


def git_sha() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def report(tally: Tally, wall_seconds: float, setup: dict[str, Any]) -> dict[str, Any]:
    pages = max(tally.pages, 1)
    return {
        "setup": setup,
        "pages": tally.pages,
        "failed_pages": tally.failed_pages,
        "ocr_word_recall": tally.words.scores()["recall"],
        "ocr_word_recall_any_overlap": tally.words_loose.scores()["recall"],
        "ocr_words": tally.words.scores(),
        "entity": {
            "micro": tally.entity_micro().scores(),
            **{k: v.scores() for k, v in tally.entities.items()},
        },
        "key_value": tally.key_values.scores(),
        "pages_per_second": tally.pages / wall_seconds if wall_seconds else 0.0,
        "ms_per_page": {stage: ms / pages for stage, ms in tally.stage_ms.items()},
        "wall_seconds": wall_seconds,
    }


def prf(scores: dict[str, Any]) -> str:
    return f"{scores['precision']:.3f} / {scores['recall']:.3f} / {scores['f1']:.3f}"


def markdown(result: dict[str, Any]) -> str:
    stages = [*STAGES, "total"]
    header = [
        "pages",
        "OCR word recall (IoU >= 0.5 / any overlap)",
        "entity P / R / F1",
        "key-value P / R / F1",
        "pages/s",
    ]
    header += [f"{stage} ms/page" for stage in stages]
    recall = f"{result['ocr_word_recall']:.3f} / {result['ocr_word_recall_any_overlap']:.3f}"
    values = [str(result["pages"]), recall, prf(result["entity"]["micro"])]
    values += [prf(result["key_value"]), f"{result['pages_per_second']:.3f}"]
    values += [f"{result['ms_per_page'][stage]:.0f}" for stage in stages]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header), "| " + " | ".join(values) + " |"]
    rows += ["", "| label | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
    for label, s in result["entity"].items():
        rows.append(
            f"| {label} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |"
        )
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="FUNSD testing_data folder.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N pages (sorted by name).")
    parser.add_argument("--model", type=Path, default=None, help="Model or ONNX folder; default: bundled.")
    parser.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from model.runtime import Runtime

    args = parse_args(argv)
    documents = sorted(read_dataset(args.data), key=lambda d: d.name)[: args.limit]
    settings = Settings()
    model_dir = serving_model_dir(settings, args.model)
    runtime = Runtime.load(model_dir, variant=args.variant, threads=args.threads)
    tally, started = Tally(), time.perf_counter()
    for number, document in enumerate(documents, start=1):
        run_page(document, runtime, settings, tally)
        print(f"[{number}/{len(documents)}] {document.name}", flush=True)
    setup = {
        "git": git_sha(),
        "data": str(args.data),
        "model": str(model_dir),
        "variant": args.variant,
        "threads": args.threads,
        "ocr_quality": settings.ocr_quality,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "limit": args.limit,
    }
    result = report(tally, time.perf_counter() - started, setup)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
