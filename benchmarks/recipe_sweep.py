"""Recipe sweep: `funsd_ser.py --runs papers-synth` over several seeds and recipe variants, several runs side
by side (meant for a GPU machine, where one run leaves the card mostly idle; it works on a CPU too, slowly).

Each run is an ordinary funsd_ser invocation (the command is printed), writing to its own results file; the
sweep merges them into `benchmarks/results/recipe_sweep.json` and prints mean and spread per variant. No run
starts after `--stop-starting-minutes`; runs still going at `--end-minutes` are stopped and left out.

    python benchmarks/recipe_sweep.py --variants base,e40,lr2e4,e40lr2e4 --seeds 42,43,44,45 --lanes 6
"""

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from funsd_ser import update_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "recipe_sweep.json"
MARKERS = ("<!-- recipe_sweep:start -->", "<!-- recipe_sweep:end -->")
VARIANTS: dict[str, list[str]] = {
    "base": [],  # 20 epochs, lr 1e-4, batch 4: the first papers-synth recipe
    "e40": ["--epochs", "40"],
    "lr2e4": ["--lr", "2e-4"],
    "lr5e5e40": ["--lr", "5e-5", "--epochs", "40"],
    "bs8": ["--batch-size", "8", "--lr", "2e-4"],
    "e40lr2e4": ["--epochs", "40", "--lr", "2e-4"],
}
Task = tuple[str, int]


def run_command(args: argparse.Namespace, variant: str, seed: int, lane: int) -> list[str]:
    command = [sys.executable, str(ROOT / "benchmarks" / "funsd_ser.py"), "--runs", "papers-synth"]
    command += ["--seed", str(seed), "--epochs", "20", "--budget-minutes", str(args.end_minutes)]
    command += ["--data", str(args.data), "--work", str(args.work / f"lane{lane}")]
    command += ["--synthetic-init", str(args.synthetic_init), "--tag", f"{variant}-s{seed}"]
    command += ["--results", str(args.work / f"lane{lane}.json")]
    if args.tokenizer:
        command += ["--tokenizer", str(args.tokenizer)]
    return command + VARIANTS[variant]  # later flags win: a variant's --epochs overrides the 20


def lane(args: argparse.Namespace, index: int, tasks: "queue.Queue[Task]", started: float) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}
    while True:
        try:
            variant, seed = tasks.get_nowait()
        except queue.Empty:
            return
        elapsed = time.monotonic() - started
        if elapsed > args.stop_starting_minutes * 60:
            return
        command = run_command(args, variant, seed, index)
        print(f"[{elapsed:5.0f}s] lane {index}: {' '.join(command)}", flush=True)
        log = args.work / f"{variant}-s{seed}.log"
        with log.open("w") as handle:
            try:
                subprocess.run(
                    command,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=ROOT,
                    timeout=max(1.0, args.end_minutes * 60 - (time.monotonic() - started)),
                )
            except subprocess.TimeoutExpired:
                print(f"lane {index}: {variant}-s{seed} stopped at the sweep's end", flush=True)


def summary(results: dict[str, dict[str, object]]) -> str:
    by_variant: dict[str, list[dict[str, object]]] = {}
    for name, result in results.items():
        variant = name.split("+", 1)[1].rsplit("-s", 1)[0]
        by_variant.setdefault(variant, []).append(result)
    lines = ["| variant | flags | seeds | test entity F1, mean | sd | min - max | validation F1, mean |"]
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for variant, runs in sorted(by_variant.items()):
        f1 = [float(r["f1"]) for r in runs]  # type: ignore[arg-type]
        val = [float(r["best_val_f1"]) for r in runs]  # type: ignore[arg-type]
        spread = f"{statistics.stdev(f1):.4f}" if len(f1) > 1 else ""
        seeds = ",".join(str(r["seed"]) for r in sorted(runs, key=lambda r: int(r["seed"])))  # type: ignore[call-overload]
        flags = " ".join(VARIANTS.get(variant, [])) or "(plain: --epochs 20 --lr 1e-4 --batch-size 4)"
        lines.append(
            f"| {variant} | `{flags}` | {seeds} | **{statistics.mean(f1):.4f}** | {spread} "
            f"| {min(f1):.4f} - {max(f1):.4f} | {statistics.mean(val):.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="base,e40lr2e4", help=f"comma list of {sorted(VARIANTS)}")
    parser.add_argument("--seeds", default="42,43,44,45")
    parser.add_argument("--lanes", type=int, default=1, help="runs side by side")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per run")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "runs" / "sweep")
    parser.add_argument(
        "--synthetic-init",
        type=Path,
        default=ROOT / "benchmarks" / "runs" / "synthetic" / "pretrain-1000" / "best",
    )
    parser.add_argument("--tokenizer", type=Path, help="default: the MiniLM package's")
    parser.add_argument("--stop-starting-minutes", type=float, default=600.0)
    parser.add_argument("--end-minutes", type=float, default=720.0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants = args.variants.split(",")
    if unknown := [v for v in variants if v not in VARIANTS]:
        parser.error(f"unknown variants {unknown}")
    args.work.mkdir(parents=True, exist_ok=True)
    tasks: queue.Queue[Task] = queue.Queue()
    for seed in (int(s) for s in args.seeds.split(",")):
        for variant in variants:
            tasks.put((variant, seed))
    started = time.monotonic()
    threads = [threading.Thread(target=lane, args=(args, i, tasks, started)) for i in range(args.lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = json.loads(args.results.read_text()) if args.results.is_file() else {}
    for part in args.work.glob("lane*.json"):
        merged |= json.loads(part.read_text())
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    table = summary(merged)
    if args.results == RESULTS:
        update_table(table, *MARKERS)
    print(table)


if __name__ == "__main__":
    main()
