"""Entity-level precision, recall and F1 as the LayoutLM papers compute them (seqeval: exact BIO spans
over words, micro-averaged, plus per label). Pure Python."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from model.decode import bio_spans


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    support: int  # gold entities

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def scores(correct: int, predicted: int, gold: int) -> Scores:
    """Precision, recall and F1 from counts (0 where undefined)."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, gold)


@dataclass(frozen=True)
class EntityReport:
    micro: Scores
    per_label: dict[str, Scores]

    def to_dict(self) -> dict[str, object]:
        return {
            "micro": self.micro.to_dict(),
            "per_label": {k: v.to_dict() for k, v in self.per_label.items()},
        }


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> EntityReport:
    """Compare BIO tag sequences (one per document); an entity counts when label, start and end match."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sequences but {len(predicted)} predicted")
    gold_spans: set[tuple[int, str, int, int]] = set()
    predicted_spans: set[tuple[int, str, int, int]] = set()
    for doc, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted, strict=True)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"document {doc}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted"
            )
        gold_spans.update((doc, s.label, s.start, s.end) for s in bio_spans(gold_tags))
        predicted_spans.update((doc, s.label, s.start, s.end) for s in bio_spans(predicted_tags))
    correct = gold_spans & predicted_spans
    count = Counter(s[1] for s in correct)
    gold_count = Counter(s[1] for s in gold_spans)
    predicted_count = Counter(s[1] for s in predicted_spans)
    labels = sorted(set(gold_count) | set(predicted_count))
    per_label = {label: scores(count[label], predicted_count[label], gold_count[label]) for label in labels}
    micro = scores(len(correct), len(predicted_spans), len(gold_spans))
    return EntityReport(micro, per_label)


FEW_VALIDATION_DOCUMENTS = 5  # fewer forms than this make a validation score too noisy to compare


def validation_size_metrics(documents: int) -> dict[str, Any]:
    """How many forms a model's validation scores come from, and a warning when they are too few to compare
    with another model's (the bundled default's come from 15 forms)."""
    metrics: dict[str, Any] = {"validation_documents": documents}
    if documents == 0:
        metrics["validation_warning"] = "no validation forms: the scores are on the training forms"
    elif documents < FEW_VALIDATION_DOCUMENTS:
        metrics["validation_warning"] = (
            f"only {documents} validation form(s): too few to compare with scores from more forms"
        )
    return metrics
