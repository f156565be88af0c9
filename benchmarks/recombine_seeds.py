"""Recombined pre-training over several seeds (issue 4): `synthetic_pretrain.py --recombine K --seed S` for
every K and S, several runs side by side (made for a GPU machine; on 2 CPU cores one lane at a time takes
about 45 minutes a run at K=22 and 85 at K=50).

Each run fine-tunes from MiniLM alone (a), pre-trains on K recombined variants of the FUNSD training forms
outside the validation split (one pass), scores that model on FUNSD test without fine-tuning (zero), and
fine-tunes it (b); all with `synthetic_pretrain.py`'s recipe and the run's seed. Each lane works in its own
copy of `benchmarks/` (its own results file); the runs' results are merged into
`benchmarks/results/recombine_seeds.json` and the table between the markers in BENCHMARKS.md.

    .venv/bin/python benchmarks/recombine_seeds.py --variants 22,50 --seeds 42,43,44,45,46,47 --lanes 6
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from funsd_ser import ROOT, git_sha, update_table

from model.funsd import read_dataset
from model.synth.recombine import held_in

RESULTS = ROOT / "benchmarks" / "results" / "recombine_seeds.json"
TABLE_START, TABLE_END = "<!-- recombine_seeds:start -->", "<!-- recombine_seeds:end -->"


def lane_copy(root: Path) -> Path:
    """A private copy of benchmarks/ (and BENCHMARKS.md, whose table the runs update) with no results."""
    shutil.copytree(
        ROOT / "benchmarks", root / "benchmarks", ignore=shutil.ignore_patterns("runs", "results")
    )
    shutil.copy(ROOT / "BENCHMARKS.md", root / "BENCHMARKS.md")
    return root


def run_one(home: Path, variants: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One seed's (a), zero and (b) runs; returns their results keyed by run name."""
    command = [
        sys.executable,
        "benchmarks/synthetic_pretrain.py",
        "--sizes",
        "",
        "--recombine",
        str(variants),
    ]
    command += ["--pretrain-pages", str(args.forms * variants), "--seed", str(seed)]  # one pass
    command += ["--data", str(args.data), "--work", str(home / "runs"), "--epochs", str(args.epochs)]
    command.append("--fresh")
    log = args.logs / f"recombine-k{variants}-s{seed}.log"
    with log.open("w") as handle:
        subprocess.run(command, cwd=home, stdout=handle, stderr=subprocess.STDOUT, check=True)
    results = home / "benchmarks" / "results" / "synthetic_pretrain.json"
    found = json.loads(results.read_text(encoding="utf-8"))
    results.unlink()
    shutil.rmtree(home / "runs", ignore_errors=True)  # checkpoints are not kept
    return found


def lane(index: int, work: "Queue[tuple[int, int]]", args: argparse.Namespace, done: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix=f"recombine-lane{index}-") as folder:
        home = lane_copy(Path(folder))
        while True:
            try:
                variants, seed = work.get_nowait()
            except Empty:
                return
            found = run_one(home, variants, seed, args)
            done[f"k{variants}-s{seed}"] = {"variants": variants, "seed": seed, "runs": found}
            print(
                f"k{variants} seed {seed}: "
                + ", ".join(f"{n} {r['entity_f1']:.4f}" for n, r in found.items())
            )


def summary(results: dict[str, Any]) -> str:
    lines = [
        "| K | seeds | (a) MiniLM only | recombined pre-training alone | (b) + fine-tuning | (b) - (a) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variants in sorted({r["variants"] for r in results.values()}):
        rows = [r for r in results.values() if r["variants"] == variants]
        a = [r["runs"]["minilm"]["entity_f1"] for r in rows]
        zero = [r["runs"][f"recombined-{variants}-zero"]["entity_f1"] for r in rows]
        b = [r["runs"][f"recombined-{variants}"]["entity_f1"] for r in rows]
        gains = [100 * (y - x) for x, y in zip(a, b, strict=True)]
        cells = [str(variants), ", ".join(str(r["seed"]) for r in rows)]
        cells += [f"{statistics.mean(v):.4f} ({min(v):.4f}-{max(v):.4f})" for v in (a, zero, b)]
        cells.append(f"**{statistics.mean(gains):+.1f}** ({min(gains):+.1f} to {max(gains):+.1f})")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="22,50", help="comma-separated K values")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--lanes", type=int, default=1, help="runs side by side")
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (the recipe's 10)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--device", default="", help="what the runs ran on, recorded with the results")
    args = parser.parse_args()
    training = read_dataset(args.data / "training_data")
    args.forms = len(held_in(training, split_seed=0))  # outside the validation split; every seed: same count
    work: Queue[tuple[int, int]] = Queue()
    for seed in (int(s) for s in args.seeds.split(",")):
        for variants in (int(k) for k in args.variants.split(",")):
            work.put((variants, seed))
    done: dict[str, Any] = {}
    threads = [threading.Thread(target=lane, args=(i, work, args, done)) for i in range(args.lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorded = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    stamp = {"git_sha": git_sha(), "device": args.device}
    recorded.update({name: {**result, **stamp} for name, result in done.items()})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    update_table(summary(recorded), TABLE_START, TABLE_END)


if __name__ == "__main__":
    main()
