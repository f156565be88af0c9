"""Fine-tuning the entity tagger (`docextract train`): AdamW, warmup + linear decay, gradient clipping,
seeded, best epoch chosen on a validation split carved from the training data, resumable, wall-clock budget.

Output folder: `best/` (the model artifact of the best validation epoch), `last/` (resume state),
`history.json` (per-epoch loss and validation F1).
"""

import json
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from model.artifact import ArtifactMeta, InputOptions
from model.config import LabelSet, ModelConfig
from model.dataset import document_example, relation_schema, split_validation
from model.features import IGNORE_INDEX, SpecialTokens, collate, collate_labels, load_tokenizer, vocab_sha256
from model.funsd import Document
from model.metrics import validation_size_metrics
from model.nn.network import EntityTagger, device_for
from model.relations import RelationSchema
from model.train.augment import Augmentation, augmented
from model.train.checkpoint import load_model, replace_folder, save_model, whole_folder
from model.train.evaluate import (
    EncodedPage,
    PixelCache,
    as_tensors,
    encode_page,
    evaluate_pages,
    model_device,
)
from model.train.initial_weights import initialised_model
from model.train.relation_loss import relation_loss
from model.train.weight_average import WeightAverage

STATE_FILE = "train_state.pt"
HISTORY_FILE = "history.json"


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
    split_seed: int | None = None  # seed of the validation split; None: `seed` (runs to average share one)
    budget_seconds: float | None = None
    init: str = "minilm"  # "minilm", "random", or a model folder to start from
    inputs: InputOptions = field(default_factory=InputOptions)
    relations: bool = True  # train the relation head when the data has links
    relation_pairs: tuple[tuple[str, str], ...] | None = None  # linkable (head, tail) labels; None: from data
    relation_weight: float = 0.5  # joint training cost 1.6 entity-F1 points at 1.0, 0.8 at 0.5
    ema_decay: float | None = None  # evaluate and keep an exponential moving average of the weights
    augmentation: Augmentation = field(default_factory=Augmentation)  # input noise (off by default)
    bf16: bool = False  # training steps' forward under bfloat16 autocast (CPUs with AVX512-BF16/AMX, GPUs)

    @property
    def validation_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val_f1: float  # entity F1
    seconds: float
    val_relation_f1: float | None = None  # relation F1 with gold entities

    @property
    def score(self) -> float:
        """What picks the best epoch: entity F1, averaged with relation F1 when there is one."""
        if self.val_relation_f1 is None:
            return self.val_f1
        return (self.val_f1 + self.val_relation_f1) / 2


ProgressCallback = Callable[[dict[str, float]], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parameter_groups(model: EntityTagger, options: TrainOptions, pretrained: set[str]) -> list[dict]:
    """Pretrained parameters at `lr`, new ones at `lr_new`; no decay on norms and biases."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        no_decay = parameter.ndim < 2 or "LayerNorm" in name
        groups.setdefault((name in pretrained, no_decay), []).append(parameter)
    return [
        {
            "params": params,
            "lr": options.lr if is_pretrained else options.lr_new,
            "weight_decay": 0.0 if no_decay else options.weight_decay,
        }
        for (is_pretrained, no_decay), params in groups.items()
    ]


def apply_step(
    loss: torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    max_grad_norm: float,
    step: int,
) -> None:
    """Backpropagate a finite loss, clip the gradients, step the optimizer and the schedule."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the loss is {loss.item()} at step {step + 1}: lower the lr")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()


class LinearSchedule:
    """Warmup then linear decay to zero at `total` steps. `total` can shrink during a run (a wall-clock
    budget that allows fewer epochs than asked) so that the decay still ends when training does. An object,
    not a closure, so the scheduler's state (and a resume) keeps `total`."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup = warmup
        self.total = total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / max(1, self.warmup)
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))


def batches(pages: Sequence[EncodedPage], batch_size: int, rng: random.Random) -> list[list[tuple[int, int]]]:
    """Shuffled batches of (page, window) indices."""
    items = [(p, w) for p, page in enumerate(pages) for w in range(len(page.windows))]
    rng.shuffle(items)
    return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]


InputNoise = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def train_step(
    model: EntityTagger,
    pages: Sequence[EncodedPage],
    batch: list[tuple[int, int]],
    pad_id: int,
    relation_weight: float = 1.0,
    noise: InputNoise | None = None,
    bf16: bool = False,
) -> torch.Tensor:
    """The batch's loss (fp32; with `bf16` the forward's matrix products run in bfloat16)."""
    windows = [pages[p].windows[w] for p, w in batch]
    arrays = collate(windows, [pages[p].pixels for p, _ in batch], pad_id)
    device = model_device(model)
    inputs = as_tensors(noise(arrays) if noise else arrays, device)
    labels = torch.from_numpy(collate_labels(windows)).to(device)
    relation_items = [pages[p].relations[w] for p, w in batch if pages[p].relations is not None]  # type: ignore[index]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        states, logits = model.states_and_logits(**inputs)
        extra = relation_loss(model, states, relation_items) if len(relation_items) == len(batch) else None
    loss = nn.functional.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX
    )
    return loss if extra is None else loss + relation_weight * extra.float()


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
    pretrained: set[str]  # parameter names that start from trained weights (the lower lr)
    on_progress: ProgressCallback | None = None
    history: list[EpochRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, self.options, self.pretrained))
        self.steps_per_epoch = -(-sum(len(p.windows) for p in self.train_pages) // self.options.batch_size)
        self.total_steps = self.steps_per_epoch * self.options.epochs
        self.schedule = LinearSchedule(round(self.options.warmup_ratio * self.total_steps), self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        self.step = 0
        decay = self.options.ema_decay
        self.average = WeightAverage(self.model, decay) if decay else None

    def _evaluated_weights(self) -> AbstractContextManager[nn.Module]:
        """The weights that are validated and saved as `best/`: the moving average when there is one."""
        return self.average.applied(self.model) if self.average else nullcontext(self.model)

    def _fit_schedule_to_budget(self, deadline: float | None) -> None:
        """End the decay with the epochs the remaining wall-clock budget allows, at the fastest epoch time
        seen so far (a slow first epoch on a busy machine must not end training early), never beyond the
        epochs asked for."""
        if deadline is None or not self.history:
            return
        epoch_seconds = min(h.seconds for h in self.history)
        epochs_left = max(0, int((deadline - time.monotonic()) / max(epoch_seconds, 1e-3)))
        reachable = self.step + epochs_left * self.steps_per_epoch
        self.schedule.total = max(self.step + 1, min(self.steps_per_epoch * self.options.epochs, reachable))
        self.total_steps = self.schedule.total

    def _save_state(self, epoch: int) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        state |= {"epoch": epoch, "step": self.step, "history": [asdict(h) for h in self.history]}
        if self.average:
            state["average"] = self.average.state_dict()

        def write(folder: Path) -> None:
            save_model(self.model, self.meta, self.tokenizer_path, folder)
            torch.save(state, folder / STATE_FILE)

        replace_folder(self.out_dir / "last", write)  # a resume never finds half a checkpoint

    def resume(self) -> int:
        """Load `last/` if present; returns the number of epochs already done."""
        last = whole_folder(self.out_dir / "last")
        if not (last / STATE_FILE).is_file():
            return 0
        model, _ = load_model(last)
        self.model.load_state_dict(model.state_dict())
        state = torch.load(last / STATE_FILE, weights_only=True, map_location=model_device(self.model))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        self.history = [EpochRecord(**h) for h in state["history"]]
        if self.average and "average" in state:  # a run resumed with averaging newly on starts it here
            self.average.load_state_dict(state["average"])
        return int(state["epoch"])

    def _input_noise(self, epoch: int) -> InputNoise | None:
        """The epoch's augmentation (seeded by seed and epoch, so a resumed run sees the same noise)."""
        augmentation = self.options.augmentation
        if not augmentation.active:
            return None
        special = self._special_tokens
        generator = np.random.default_rng([self.options.seed, epoch])
        return lambda inputs: augmented(inputs, augmentation, special, generator)

    @cached_property
    def _special_tokens(self) -> SpecialTokens:
        return SpecialTokens.of(load_tokenizer(self.tokenizer_path))

    def _epoch(self, epoch: int, deadline: float | None) -> float:
        self.model.train()
        rng = random.Random(self.options.seed * 1000 + epoch)
        noise = self._input_noise(epoch)
        losses = []
        options = self.options
        for batch in batches(self.train_pages, options.batch_size, rng):
            loss = train_step(
                self.model, self.train_pages, batch, self.pad_id, options.relation_weight, noise, options.bf16
            )
            apply_step(loss, self.model, self.optimizer, self.scheduler, options.max_grad_norm, self.step)
            self.step += 1
            if self.average:
                self.average.update(self.model)
            losses.append(loss.item())
            if self.on_progress:
                self.on_progress(
                    {"epoch": epoch, "step": self.step, "total_steps": self.total_steps, "loss": losses[-1]}
                )
            if deadline is not None and time.monotonic() > deadline:
                break
        return float(np.mean(losses)) if losses else float("nan")

    def _best_score(self) -> float:
        return max((h.score for h in self.history), default=-1.0)

    def run(self, start_epoch: int = 0) -> list[EpochRecord]:
        started = time.monotonic()
        deadline = started + self.options.budget_seconds if self.options.budget_seconds else None
        for epoch in range(start_epoch, self.options.epochs):
            epoch_start = time.monotonic()
            loss = self._epoch(epoch + 1, deadline)
            best = self._best_score()
            with self._evaluated_weights() as evaluated:
                report = evaluate_pages(evaluated, self.val_pages or self.train_pages, self.meta, self.pad_id)
                relation = report.relations_gold_entities.f1 if report.relations_gold_entities else None
                record = EpochRecord(
                    epoch + 1, loss, report.entities.micro.f1, time.monotonic() - epoch_start, relation
                )
                self.history.append(record)
                if record.score > best:
                    save = partial(save_model, evaluated, self._meta_with_metrics(), self.tokenizer_path)
                    replace_folder(self.out_dir / "best", save)
            self._fit_schedule_to_budget(deadline)
            self._save_state(epoch + 1)
            self._write_history()
            if self.on_progress:
                event = {
                    "epoch": epoch + 1,
                    "loss": loss,
                    "val_f1": record.val_f1,
                    "best": max(best, record.score),
                }
                self.on_progress(event | ({"val_relation_f1": relation} if relation is not None else {}))
            if deadline is not None and time.monotonic() > deadline:
                break
        return self.history

    def _meta_with_metrics(self) -> ArtifactMeta:
        last = self.history[-1]
        record = {"epochs": len(self.history), "best_epoch": last.epoch}
        metrics: dict[str, Any] = {"validation_entity_f1": last.val_f1}
        if last.val_relation_f1 is not None:
            metrics["validation_relation_f1"] = last.val_relation_f1
        metrics |= validation_size_metrics(len(self.val_pages))
        options = {k: v for k, v in asdict(self.options).items() if k != "inputs"}
        return replace(self.meta, metrics=metrics, training=options | record)

    def _write_history(self) -> None:
        payload = {"history": [asdict(h) for h in self.history], "options": asdict(self.options)}
        (self.out_dir / HISTORY_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")


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
    schema = relation_schema(documents, label_set) if options.relations else None
    if schema and options.relation_pairs:
        schema = RelationSchema(tuple(options.relation_pairs))
    tokenizer = load_tokenizer(tokenizer_path)
    train_idx, val_idx = split_validation(
        [d.name for d in documents], options.validation_fraction, options.validation_seed
    )
    inputs = options.inputs
    pixel_cache: PixelCache = {}

    def encode(indices: list[int], done: int) -> list[EncodedPage]:
        """Tokenise the pages `indices` (and cache their pixels), reporting each as prepared."""
        relations = (schema, label_set) if schema else None
        pages = []
        for i in indices:
            example = document_example(documents[i], label_set, inputs.word_order, inputs.box_level)  # type: ignore[arg-type]
            pages.append(encode_page(example, tokenizer, inputs, config.image_size, relations, pixel_cache))
            if on_progress:
                on_progress({"prepared": done + len(pages), "to_prepare": len(documents)})
        return pages

    meta = ArtifactMeta(config, label_set, vocab_sha256(tokenizer), inputs, relation_schema=schema)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model, pretrained = initialised_model(meta, options.init)
    model.to(device_for(0))  # a GPU where there is one
    pad_id = SpecialTokens.of(tokenizer).pad
    train_pages = encode(train_idx, 0)
    val_pages = encode(val_idx, len(train_idx))
    return Trainer(
        model, meta, options, train_pages, val_pages, tokenizer_path, out_dir, pad_id, pretrained, on_progress
    )
