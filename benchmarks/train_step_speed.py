"""Seconds per training step (forward, backward, AdamW) of the default-size model on this machine, for
the choices that trade arithmetic for speed: fp32 or bfloat16 autocast (`TrainOptions.bf16`), attention
dropout on (0.1, MiniLM's) or off.

The update is the trainer's own (`model.train.trainer.apply_step`: finiteness check, backward, gradient
clipping, AdamW, schedule). One batch of 4 windows of 512 text tokens + 49 visual tokens, random inputs
(the step's cost depends on shapes, not values), median of `--repeats` steps after one warm-up step,
`--threads` torch threads.

    .venv/bin/python benchmarks/train_step_speed.py --threads 2

Writes `benchmarks/results/train_step_speed.json`.
"""

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from model.config import minilm_config
from model.nn.network import EntityTagger
from model.train.trainer import TrainOptions, apply_step

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "train_step_speed.json"
NUM_TAGS = 7  # FUNSD's BIO tags


def random_batch(batch: int, length: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    x0 = torch.randint(0, 900, (batch, length), generator=generator)
    y0 = torch.randint(0, 950, (batch, length), generator=generator)
    return {
        "input_ids": torch.randint(1000, 20000, (batch, length), generator=generator),
        "bbox": torch.stack([x0, y0, x0 + 60, y0 + 20], dim=-1),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "pixel_values": torch.rand(batch, 3, 224, 224, generator=generator),
    }


def step_seconds(attention_dropout: float, bf16: bool, repeats: int) -> float:
    generator = torch.Generator().manual_seed(0)
    model = EntityTagger(minilm_config().with_changes(attention_dropout=attention_dropout), NUM_TAGS).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    inputs = random_batch(4, 512, generator)
    labels = torch.randint(0, NUM_TAGS, (4, 512), generator=generator)

    def step() -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(**inputs)
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten())
        apply_step(
            loss, model, optimizer, scheduler, TrainOptions.max_grad_norm, step=0
        )  # the trainer's update
        return time.perf_counter() - started

    step()
    return statistics.median(step() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for attention_dropout in (0.1, 0.0):
        for bf16 in (False, True):
            seconds = step_seconds(attention_dropout, bf16, args.repeats)
            rows.append({"attention_dropout": attention_dropout, "bf16": bf16, "seconds": round(seconds, 3)})
            print(rows[-1], flush=True)
    baseline = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = round(baseline / row["seconds"], 2)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
