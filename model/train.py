"""Fine-tuning the entity tagger (`docextract train`): AdamW, warmup + linear decay, gradient clipping,
seeded, best epoch chosen on a validation split carved from the training data, resumable, wall-clock budget.

Output folder: `best/` (the model artifact of the best validation epoch), `last/` (resume state),
`history.json` (per-epoch loss and validation F1).
"""

import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.artifact import ArtifactMeta, InputOptions
from model.checkpoint import load_model, save_model
from model.config import LabelSet, ModelConfig
from model.dataset import document_example, split_validation
from model.evaluate import EncodedPage, as_tensors, encode_page, evaluate_pages
from model.features import IGNORE_INDEX, SpecialTokens, collate, collate_labels, load_tokenizer, vocab_sha256
from model.funsd import Document
from model.minilm import load_minilm_text_stream, name_mapping
from model.network import EntityTagger

STATE_FILE = "train_state.pt"


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 30
    batch_size: int = 4
    lr: float = 1e-4  # pretrained text stream
    lr_new: float = 1e-3  # layout, visual, spatial bias, head
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 42
    validation_fraction: float = 0.1
    budget_seconds: float | None = None
    init: str = "minilm"  # "minilm", "random", or a model folder to start from
    inputs: InputOptions = field(default_factory=InputOptions)


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val_f1: float
    seconds: float


ProgressCallback = Callable[[dict[str, float]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(config: ModelConfig, label_set: LabelSet, init: str) -> EntityTagger:
    """A fresh tagger with its text stream from MiniLM, random weights, or a saved model's encoder."""
    model = EntityTagger(config, label_set.num_tags)
    if init == "minilm":
        load_minilm_text_stream(model.encoder)
    elif init != "random":
        source, _ = load_model(Path(init))
        model.encoder.load_state_dict(source.encoder.state_dict())
    return model


def parameter_groups(model: EntityTagger, options: TrainOptions) -> list[dict]:
    """Pretrained text-stream parameters at `lr`, new ones at `lr_new`; no decay on norms and biases."""
    pretrained = {f"encoder.{name}" for name in name_mapping(model.encoder.config.num_layers)}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        no_decay = parameter.ndim < 2 or "LayerNorm" in name
        groups.setdefault((name in pretrained and options.init != "random", no_decay), []).append(parameter)
    return [
        {
            "params": params,
            "lr": options.lr if is_pretrained else options.lr_new,
            "weight_decay": 0.0 if no_decay else options.weight_decay,
        }
        for (is_pretrained, no_decay), params in groups.items()
    ]


def linear_schedule(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def batches(pages: Sequence[EncodedPage], batch_size: int, rng: random.Random) -> list[list[tuple[int, int]]]:
    """Shuffled batches of (page, window) indices."""
    items = [(p, w) for p, page in enumerate(pages) for w in range(len(page.windows))]
    rng.shuffle(items)
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]


def train_step(
    model: EntityTagger, pages: Sequence[EncodedPage], batch: list[tuple[int, int]], pad_id: int
) -> torch.Tensor:
    windows = [pages[p].windows[w] for p, w in batch]
    inputs = as_tensors(collate(windows, [pages[p].pixels for p, _ in batch], pad_id))
    labels = torch.from_numpy(collate_labels(windows))
    logits = model(**inputs)
    return nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


@dataclass
class Trainer:
    """Holds what one training run needs; `run()` does the epochs."""

    model: EntityTagger
    meta: ArtifactMeta
    options: TrainOptions
    train_pages: list[EncodedPage]
    val_pages: list[EncodedPage]
    tokenizer_path: Path
    out_dir: Path
    pad_id: int
    on_progress: ProgressCallback | None = None
    history: list[EpochRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, self.options))
        steps_per_epoch = -(-sum(len(p.windows) for p in self.train_pages) // self.options.batch_size)
        self.total_steps = steps_per_epoch * self.options.epochs
        warmup = round(self.options.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, linear_schedule(warmup, self.total_steps)
        )
        self.step = 0

    def _save_state(self, epoch: int) -> None:
        last = self.out_dir / "last"
        save_model(self.model, self.meta, self.tokenizer_path, last)
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        state |= {"epoch": epoch, "step": self.step, "history": [asdict(h) for h in self.history]}
        torch.save(state, last / STATE_FILE)

    def resume(self) -> int:
        """Load `last/` if present; returns the number of epochs already done."""
        last = self.out_dir / "last"
        if not (last / STATE_FILE).is_file():
            return 0
        model, _ = load_model(last)
        self.model.load_state_dict(model.state_dict())
        state = torch.load(last / STATE_FILE, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        self.history = [EpochRecord(**h) for h in state["history"]]
        return int(state["epoch"])

    def _epoch(self, epoch: int, deadline: float | None) -> float:
        self.model.train()
        rng = random.Random(self.options.seed * 1000 + epoch)
        losses = []
        for batch in batches(self.train_pages, self.options.batch_size, rng):
            loss = train_step(self.model, self.train_pages, batch, self.pad_id)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), self.options.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            losses.append(loss.item())
            if self.on_progress:
                self.on_progress(
                    {"epoch": epoch, "step": self.step, "total_steps": self.total_steps, "loss": losses[-1]}
                )
            if deadline is not None and time.monotonic() > deadline:
                break
        return float(np.mean(losses)) if losses else float("nan")

    def _best_f1(self) -> float:
        return max((h.val_f1 for h in self.history), default=-1.0)

    def run(self, start_epoch: int = 0) -> list[EpochRecord]:
        started = time.monotonic()
        deadline = started + self.options.budget_seconds if self.options.budget_seconds else None
        for epoch in range(start_epoch, self.options.epochs):
            epoch_start = time.monotonic()
            loss = self._epoch(epoch + 1, deadline)
            pages = self.val_pages or self.train_pages
            f1 = evaluate_pages(self.model, pages, self.meta, self.pad_id).micro.f1
            best = self._best_f1()
            self.history.append(EpochRecord(epoch + 1, loss, f1, time.monotonic() - epoch_start))
            if f1 > best:
                save_model(self.model, self._meta_with_metrics(), self.tokenizer_path, self.out_dir / "best")
            self._save_state(epoch + 1)
            self._write_history()
            if self.on_progress:
                self.on_progress({"epoch": epoch + 1, "loss": loss, "val_f1": f1, "best_f1": max(best, f1)})
            if deadline is not None and time.monotonic() > deadline:
                break
        return self.history

    def _meta_with_metrics(self) -> ArtifactMeta:
        record = {"epochs": len(self.history), "best_epoch": max(self.history, key=lambda h: h.val_f1).epoch}
        metrics = {"validation_entity_f1": self.history[-1].val_f1}
        options = {k: v for k, v in asdict(self.options).items() if k != "inputs"}
        return ArtifactMeta(
            self.meta.config, self.meta.label_set, self.meta.vocab_sha256, self.meta.inputs, metrics,
            options | record,
        )  # fmt: skip

    def _write_history(self) -> None:
        payload = {"history": [asdict(h) for h in self.history], "options": asdict(self.options)}
        (self.out_dir / "history.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")


def prepare_trainer(
    documents: Sequence[Document],
    out_dir: Path,
    options: TrainOptions,
    config: ModelConfig,
    tokenizer_path: Path,
    label_set: LabelSet | None = None,
    on_progress: ProgressCallback | None = None,
) -> Trainer:
    """Split, encode and build everything a run needs (labels from the data unless given)."""
    seed_everything(options.seed)
    label_set = label_set or LabelSet.from_labels(label for d in documents for label in d.labels)
    tokenizer = load_tokenizer(tokenizer_path)
    train_idx, val_idx = split_validation(
        [d.name for d in documents], options.validation_fraction, options.seed
    )
    inputs = options.inputs

    def encode(indices: list[int]) -> list[EncodedPage]:
        examples = [
            document_example(documents[i], label_set, inputs.word_order, inputs.box_level)  # type: ignore[arg-type]
            for i in indices
        ]
        return [encode_page(e, tokenizer, inputs, config.image_size) for e in examples]

    meta = ArtifactMeta(config, label_set, vocab_sha256(tokenizer), inputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(config, label_set, options.init)
    pad_id = SpecialTokens.of(tokenizer).pad
    return Trainer(
        model, meta, options, encode(train_idx), encode(val_idx), tokenizer_path, out_dir, pad_id, on_progress
    )
