"""Pre-training the encoder with LayoutLMv2's three objectives (MVLM, TIA, TIM; see `model.pretrain.data`)
on unlabelled OCR'd pages. Data-parallel under torchrun (DistributedDataParallel, gloo on CPU); the same code
runs as one process.

    torchrun --nproc_per_node 2 -m model.pretrain.loop --pages OUT/pages.jsonl --out OUT --steps 1000

Output folder: `model/` (a model artifact whose encoder `docextract train --init OUT/model` starts from; its
entity head and placeholder label set are unused), `last/` (resume state, written every
`checkpoint_every` steps), `losses.jsonl` (each objective's loss per step, averaged over processes) and
`loss_mvlm.png`, `loss_tia.png`, `loss_tim.png`. Rank 0 writes everything.
"""

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from model.artifact import ArtifactMeta, InputOptions
from model.config import LabelSet, ModelConfig
from model.features import SpecialTokens, load_tokenizer, vocab_sha256
from model.nn.network import device_for
from model.pretrain.data import (
    EncodedPretrainPage,
    MaskingRates,
    PretrainPage,
    encode_pretrain_page,
    pretrain_batch,
    read_pages,
)
from model.pretrain.heads import (
    OBJECTIVES,
    LayoutLMv2ForPretraining,
    initial_model,
    parameter_groups,
    pretrain_losses,
    weighted_total,
)
from model.pretrain.loss_plot import plot_losses
from model.train.checkpoint import build_network, save_model
from model.train.start import resolve_start, tokenizer_of
from model.train.trainer import LinearSchedule, apply_step

PLACEHOLDER_LABELS = LabelSet(("unlabelled",))  # the artifact format needs one; fine-tuning replaces it
MODEL_DIR, LAST_DIR, LOSSES_FILE = "model", "last", "losses.jsonl"
WEIGHTS, STATE = "pretrain.safetensors", "pretrain_state.pt"
ProgressCallback = Callable[[dict[str, float]], None]


@dataclass(frozen=True)
class PretrainOptions:
    steps: int = 10000
    batch_size: int = 4  # per process
    lr: float = 5e-5  # pretrained text stream
    lr_new: float = 5e-4  # layout, visual, spatial bias, heads
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 42
    budget_seconds: float | None = None
    checkpoint_every: int = 50
    init: str = "minilm"  # "minilm", "random", or a model folder
    mvlm_weight: float = 1.0
    tia_weight: float = 1.0
    tim_weight: float = 1.0
    rates: MaskingRates = field(default_factory=MaskingRates)
    inputs: InputOptions = field(default_factory=InputOptions)

    @property
    def weights(self) -> dict[str, float]:
        return {"mvlm": self.mvlm_weight, "tia": self.tia_weight, "tim": self.tim_weight}


def world() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) for a plain process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def step_items(num_items: int, step: int, batch_size: int, rank: int, size: int, seed: int) -> list[int]:
    """This process's items at `step`: a seeded permutation per epoch, cut into global batches of
    batch_size x size (wrapping around, so every process always gets a full batch)."""
    per_step = batch_size * size
    steps_per_epoch = max(1, num_items // per_step)
    epoch, index = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(num_items)
    start = index * per_step + rank * batch_size
    return [int(order[(start + k) % num_items]) for k in range(batch_size)]


@dataclass
class Pretrainer:
    """One pre-training run; `run()` does the steps. Under torchrun every process builds one."""

    model: LayoutLMv2ForPretraining
    options: PretrainOptions
    pages: list[EncodedPretrainPage]
    meta: ArtifactMeta
    tokenizer_path: Path
    out_dir: Path
    special: SpecialTokens
    on_progress: ProgressCallback | None = None

    def __post_init__(self) -> None:
        self.rank, self.size = world()
        self.device = next(self.model.parameters()).device
        self.items = [(p, w) for p, page in enumerate(self.pages) for w in range(len(page.windows))]
        o = self.options
        groups = parameter_groups(self.model, o.lr, o.lr_new, o.weight_decay, o.init != "random")
        self.optimizer = torch.optim.AdamW(groups)
        warmup = round(self.options.warmup_ratio * self.options.steps)
        self.schedule = LinearSchedule(warmup, self.options.steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        self.step = 0
        self.wrapped: nn.Module = self.model

    def resume(self) -> int:
        """Load `last/` if present (every process); returns the step reached."""
        last = self.out_dir / LAST_DIR
        if not (last / STATE).is_file():
            return 0
        self.model.load_state_dict(load_file(str(last / WEIGHTS)))
        state = torch.load(last / STATE, weights_only=True, map_location=self.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.schedule.total = self.options.steps  # the run may now ask for more steps: decay to its end
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
            group["lr"] = base * self.schedule(self.step)
        return self.step

    def _batch(self) -> dict[str, torch.Tensor]:
        o = self.options
        chosen = step_items(len(self.items), self.step, o.batch_size, self.rank, self.size, o.seed)
        rng = np.random.default_rng([o.seed, self.step, self.rank])
        vocab = self.model.encoder.config.vocab_size
        arrays = pretrain_batch(
            self.pages, [self.items[i] for i in chosen], rng, self.special, vocab, o.rates
        )
        return {name: torch.from_numpy(array).to(self.device) for name, array in arrays.items()}

    def _train_step(self) -> dict[str, float]:
        batch = self._batch()
        inputs = {k: batch[k] for k in ("input_ids", "bbox", "attention_mask", "pixel_values", "mlm_labels")}
        losses = pretrain_losses(self.wrapped(**inputs), batch)
        total = weighted_total(losses, self.options.weights)
        group = self.optimizer.param_groups[0]
        lr_scale = group["lr"] / group["initial_lr"]  # of this step's learning rates
        apply_step(total, self.model, self.optimizer, self.scheduler, self.options.max_grad_norm, self.step)
        self.step += 1
        values = torch.stack([losses[n].detach() for n in OBJECTIVES] + [total.detach()])
        if self.size > 1:
            dist.all_reduce(values)
            values /= self.size
        return dict(zip((*OBJECTIVES, "total"), values.tolist(), strict=True)) | {"lr_scale": lr_scale}

    def _agree(self, stop: bool) -> tuple[bool, int]:
        """Rank 0's stop decision and schedule end, the same in every process."""
        decided = torch.tensor([float(stop), float(self.schedule.total)], device=self.device)
        if self.size > 1:
            dist.broadcast(decided, 0)
        return bool(decided[0]), int(decided[1])

    def _fit_schedule(self, deadline: float | None, started: float, start_step: int) -> None:
        """With a budget: end the decay at the step the remaining time allows (never beyond `steps`)."""
        if deadline is None or self.step <= start_step:
            return
        per_step = (time.monotonic() - started) / (self.step - start_step)
        reachable = self.step + int((deadline - time.monotonic()) / max(per_step, 1e-6))
        self.schedule.total = max(self.step + 1, min(self.options.steps, reachable))

    def _save_state(self) -> None:
        """`last/` written beside and swapped in, so a kill while saving keeps the previous one."""
        tmp, last = self.out_dir / f"{LAST_DIR}.tmp", self.out_dir / LAST_DIR
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file({k: v.cpu().contiguous() for k, v in self.model.state_dict().items()}, str(tmp / WEIGHTS))
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        torch.save(state | {"step": self.step}, tmp / STATE)
        shutil.rmtree(last, ignore_errors=True)
        tmp.rename(last)

    def _log(self, record: dict[str, float]) -> None:
        with (self.out_dir / LOSSES_FILE).open("a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        if self.on_progress:
            epoch = self.step * self.options.batch_size * self.size // max(1, len(self.items))
            event = {"epoch": epoch, "step": self.step, "total_steps": self.options.steps}
            self.on_progress(event | {"loss": record["total"]} | {k: record[k] for k in OBJECTIVES})

    def run(self) -> list[dict[str, float]]:
        """Train up to `steps` (or the budget); rank 0 checkpoints, logs and writes the model artifact."""
        started, start_step = time.monotonic(), self.step
        deadline = started + self.options.budget_seconds if self.options.budget_seconds else None
        if self.rank == 0:
            truncate_log(self.out_dir / LOSSES_FILE, self.step)
        stop = self.step >= self.options.steps
        while not stop:
            losses = self._train_step()
            if self.rank == 0:
                self._log({"step": self.step} | losses | {"seconds": round(time.monotonic() - started, 3)})
                if self.step % self.options.checkpoint_every == 0:
                    self._fit_schedule(deadline, started, start_step)
                    self._save_state()
            timed_out = deadline is not None and time.monotonic() > deadline
            stop, self.schedule.total = self._agree(timed_out or self.step >= self.options.steps)
        return self.finish(time.monotonic() - started)

    def finish(self, seconds: float) -> list[dict[str, float]]:
        """Rank 0: the last state, the model artifact and the loss curves; the records of every step."""
        self._check_in_sync()
        records = read_log(self.out_dir / LOSSES_FILE)
        if self.rank == 0:
            self._save_state()
            save_model(
                encoder_artifact(self.model, self.meta),
                self._final_meta(records, seconds),
                self.tokenizer_path,
                self.out_dir / MODEL_DIR,
            )
            plot_losses(records, OBJECTIVES, self.out_dir)
        return records

    def _check_in_sync(self) -> None:
        """Every process must hold the same weights (DDP averages gradients; the schedule is shared)."""
        if self.size == 1:
            return
        total = torch.stack([p.detach().double().sum() for p in self.model.parameters()]).sum().reshape(1)
        gathered = [torch.zeros_like(total) for _ in range(self.size)]
        dist.all_gather(gathered, total)
        if not all(torch.allclose(g, gathered[0], rtol=1e-9, atol=0.0) for g in gathered):
            raise RuntimeError(f"the processes' weights differ after step {self.step}: {gathered}")

    def _final_meta(self, records: Sequence[dict[str, float]], seconds: float) -> ArtifactMeta:
        last = records[-1] if records else {}
        options = asdict(self.options) | {"processes": self.size, "steps_done": self.step, "seconds": seconds}
        metrics = {f"pretrain_{k}_loss": last[k] for k in OBJECTIVES if k in last}
        return ArtifactMeta(
            self.meta.config,
            self.meta.label_set,
            self.meta.vocab_sha256,
            self.meta.inputs,
            metrics=metrics,
            training={"pretraining": options},
        )


def encoder_artifact(model: LayoutLMv2ForPretraining, meta: ArtifactMeta) -> nn.Module:
    """An entity tagger (the artifact format) carrying the pre-trained encoder and an unused head."""
    tagger = build_network(meta)
    tagger.encoder.load_state_dict(model.encoder.state_dict())
    return tagger


def read_log(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_log(path: Path, step: int) -> None:
    """Drop records after `step` (steps done after the last checkpoint, redone on resume)."""
    kept = [r for r in read_log(path) if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")


def prepare_pretrainer(
    pages: Sequence[PretrainPage],
    root: Path,
    out_dir: Path,
    options: PretrainOptions,
    config: ModelConfig,
    on_progress: ProgressCallback | None = None,
) -> Pretrainer:
    """Encode the pages (image paths relative to `root`) and build the model and optimizer."""
    if not pages:
        raise ValueError("no pages to pre-train on")
    torch.manual_seed(options.seed)
    tokenizer_path = tokenizer_of(options.init)
    tokenizer = load_tokenizer(tokenizer_path)
    i = options.inputs
    encoded = [
        encode_pretrain_page(p, root, tokenizer, config.image_size, i.max_tokens, i.overlap_tokens)
        for p in pages
    ]
    meta = ArtifactMeta(config, PLACEHOLDER_LABELS, vocab_sha256(tokenizer), options.inputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = initial_model(config, options.init).to(device_for(int(os.environ.get("LOCAL_RANK", "0"))))
    special = SpecialTokens.of(tokenizer)
    return Pretrainer(model, options, encoded, meta, tokenizer_path, out_dir, special, on_progress)


def run_pretraining(
    pages: Sequence[PretrainPage],
    root: Path,
    out_dir: Path,
    options: PretrainOptions,
    config: ModelConfig,
    resume: bool = True,
    on_progress: ProgressCallback | None = None,
) -> list[dict[str, float]]:
    """One process, or one of torchrun's (WORLD_SIZE > 1: a gloo process group and DDP)."""
    _, size = world()
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    try:
        trainer = prepare_pretrainer(pages, root, out_dir, options, config, on_progress)
        if resume:
            trainer.resume()
        if size > 1:
            device = trainer.device
            trainer.wrapped = DistributedDataParallel(
                trainer.model, [device.index] if device.index is not None else None
            )
        history = trainer.run()
        if size > 1:
            dist.barrier()  # no rank tears the group down while another is still in it (gloo aborts at exit)
        return history
    finally:
        if size > 1 and dist.is_initialized():
            dist.destroy_process_group()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    description = __doc__.split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m model.pretrain.loop", description=description)
    parser.add_argument(
        "--pages", type=Path, required=True, help="pages JSONL (docextract pretrain writes it)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=PretrainOptions.steps)
    parser.add_argument("--batch-size", type=int, default=PretrainOptions.batch_size, help="per process")
    parser.add_argument("--budget-minutes", type=float, default=None)
    parser.add_argument("--init", default="minilm", help="minilm, random, or a model folder")
    parser.add_argument("--size", default="minilm", help="minilm, base or tiny (with --init random)")
    parser.add_argument("--checkpoint-every", type=int, default=PretrainOptions.checkpoint_every)
    parser.add_argument("--max-tokens", type=int, default=InputOptions.max_tokens)
    parser.add_argument("--seed", type=int, default=PretrainOptions.seed)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last if present")
    for name in ("lr", "lr_new", *(f"{o}_weight" for o in OBJECTIVES)):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(PretrainOptions, name))
    return parser.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> PretrainOptions:
    return PretrainOptions(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_new=args.lr_new,
        seed=args.seed,
        budget_seconds=args.budget_minutes * 60 if args.budget_minutes else None,
        checkpoint_every=args.checkpoint_every,
        init=args.init,
        mvlm_weight=args.mvlm_weight,
        tia_weight=args.tia_weight,
        tim_weight=args.tim_weight,
        inputs=InputOptions(max_tokens=args.max_tokens),
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    rank, _ = world()

    def report(event: dict[str, float]) -> None:
        if rank == 0 and (event["step"] % 10 == 0 or event["step"] == event["total_steps"]):
            parts = " ".join(f"{k} {event[k]:.4f}" for k in OBJECTIVES)
            print(f"step {event['step']}/{event['total_steps']}: {parts}", file=sys.stderr, flush=True)

    options = options_from_args(args)
    config = resolve_start(args.init, args.size).config
    pages = read_pages(args.pages)
    run_pretraining(pages, args.pages.parent, args.out, options, config, args.resume, report)
    if rank == 0:
        print(f"pre-trained encoder in {args.out / MODEL_DIR}", file=sys.stderr)


if __name__ == "__main__":
    main()
