"""What the benchmarks watch of a fine-tuning (`model.train.fine_tune.fine_tune`'s observer): each epoch's
validation scores, printed, and each phase's wall time and page count."""

import time
from collections.abc import Sequence

from model.train.trainer import EpochRecord


class TrainingLog:
    def __init__(self, label: str) -> None:
        self.label = label
        self.started: dict[str, float] = {}  # phase -> when it began
        self.pages: dict[str, int] = {}  # phase -> pages it trains and validates on
        self.current = ""

    def phase(self, name: str) -> None:
        self.current = name
        self.started[name] = time.monotonic()

    def progress(self, event: dict[str, float]) -> None:
        if "to_prepare" in event:
            self.pages[self.current] = int(event["to_prepare"])
        if "val_f1" in event:
            relation = event.get("val_relation_f1")
            extra = f" val RE F1 {relation:.4f}" if relation is not None else ""
            print(f"[{self.label}] {self.current} epoch {int(event['epoch'])} loss {event['loss']:.4f} "
                  f"val F1 {event['val_f1']:.4f}{extra}", flush=True)  # fmt: skip

    def resumed(self, history: Sequence[EpochRecord]) -> None:
        pass

    def seconds(self, name: str) -> float:
        """Wall time of phase `name`: until the next phase began, or until now."""
        began = self.started[name]
        later = [t for t in self.started.values() if t > began]
        return min(later, default=time.monotonic()) - began
