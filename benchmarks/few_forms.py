"""What synthetic pre-training buys when only a few labelled forms are at hand (issue 4).

A user who trains docextract on their own documents has a few dozen of them, not FUNSD's 149. This runs the
pre-training table's fine-tuning recipe (`synthetic_pretrain.py`: joint entity + relation heads, words in
annotation order, relation loss weight 1.0, seed 42) on a seeded sample of N FUNSD training forms, from
MiniLM alone (a), from the synthetic pre-training (b), and (c, `--inits recomb`) from a pre-training that
starts at (b) and takes one pass over `--recombine` K recombined copies of the sample's own training forms
(the validation forms left out, as `docextract recombine --leave-out-split-seed` does), and scores them on
the 50 FUNSD test forms.

Every run takes the same number of optimizer steps as the full-data recipe (10 epochs over 149 forms), so
fewer forms mean more epochs over them: the comparison is about data, not about compute. The validation split
(10% of the sample, at least one form) picks the best epoch, as in `docextract train`.

    .venv/bin/python benchmarks/few_forms.py --forms 25,50 \\
        --synthetic-init benchmarks/runs/synthetic/pretrain-1000/best
    .venv/bin/python benchmarks/few_forms.py --forms 10,25 --inits recomb --recombine 50

Results go to `benchmarks/results/few_forms.json` (recorded runs are skipped on a rerun) and to the table
between the markers in BENCHMARKS.md.
"""

import argparse
import json
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from funsd_ser import ROOT, git_sha, update_table
from synthetic_pretrain import finetune_recipe, test_scores
from training_log import TrainingLog

from model.config import minilm_config
from model.funsd import Document, read_dataset
from model.train.fine_tune import PRETRAIN_FOLDER, fine_tune
from model.train.start import resolve_start

RESULTS = ROOT / "benchmarks" / "results" / "few_forms.json"
TABLE_START, TABLE_END = "<!-- few_forms:start -->", "<!-- few_forms:end -->"
FULL_FORMS = 149  # FUNSD's training forms: the full-data recipe's 10 epochs are counted over these


def sample_forms(documents: list[Document], count: int, seed: int) -> list[Document]:
    """`count` forms drawn without replacement, the same ones for every init (sorted by name)."""
    if not 2 <= count <= len(documents):
        raise SystemExit(f"--forms: {count} is not between 2 and the {len(documents)} training forms")
    chosen = random.Random(seed).sample(range(len(documents)), count)
    return [documents[i] for i in sorted(chosen)]


def epochs_for(count: int, full_epochs: int) -> int:
    """Epochs over `count` forms that take about as many steps as `full_epochs` over all of them."""
    return max(full_epochs, math.ceil(full_epochs * FULL_FORMS / count))


def run_name(init_name: str, count: int, seed: int) -> str:
    return f"{init_name}-{count}" + (f"-seed{seed}" if seed != 42 else "")


def run_one(count: int, init_name: str, init: str, args: argparse.Namespace) -> dict[str, Any]:
    """One fine-tuning on `count` forms; `recomb` first pre-trains for one pass over `args.recombine`
    recombined copies of the forms it trains on, from the synthetic pre-training (into RUN/pretrain)."""
    name = run_name(init_name, count, args.seed)
    forms = sample_forms(read_dataset(args.data / "training_data"), count, args.seed)
    copies = args.recombine if init_name == "recomb" else 0
    recipe = replace(finetune_recipe(args), epochs=epochs_for(count, args.epochs))
    start = resolve_start(str(args.synthetic_init) if copies else init)
    start = replace(start, config=minilm_config(), inputs=recipe.inputs)
    out = args.work / name
    log = TrainingLog(name)
    fine_tune(forms, start, recipe, out, log, recombined_copies=copies)
    pretraining: dict[str, Any] = {}
    if copies:
        pages, seconds = log.pages["pretraining"], log.seconds("pretraining")
        pretraining = {"recombine": copies, "pretrain_pages": pages, "pretrain_seconds": round(seconds, 1)}
    return {
        "run": name,
        "forms": count,
        "init": str(out / PRETRAIN_FOLDER / "best") if copies else init,
        "epochs": recipe.epochs,
        "seed": args.seed,
        **pretraining,
        "finetune_seconds": round(log.seconds("fine-tuning"), 1),
        "git_sha": git_sha(),
        **test_scores(out / "best", args.data / "testing_data"),
    }


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| labelled forms | seed | epochs | (a) MiniLM only | (b) synthetic pre-training | (b) - (a) "
        "| (c) (b) + recombined copies | (c) - (b) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for count, seed in sorted({(int(r["forms"]), int(r["seed"])) for r in results.values()}):
        runs = [results.get(run_name(init, count, seed)) for init in ("minilm", "synth", "recomb")]
        cells = [str(count), str(seed), str(next(r["epochs"] for r in runs if r))]
        a, b, c = runs
        cells += [_scores(a), _scores(b), _gain(a, b), _scores(c), _gain(b, c)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _scores(run: dict[str, Any] | None) -> str:
    return f"{run['entity_f1']:.4f} / {run['relation_f1_gold_entities']:.4f}" if run else "-"


def _gain(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    return f"**{100 * (after['entity_f1'] - before['entity_f1']):+.1f}**" if before and after else "-"


def save(results: dict[str, dict[str, Any]]) -> None:
    """Merge into the results file (another run of this script may be recording other runs)."""
    if RESULTS.exists():
        results = {**json.loads(RESULTS.read_text(encoding="utf-8")), **results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_table(markdown_table(results), TABLE_START, TABLE_END)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--forms", type=lambda s: [int(x) for x in s.split(",")], default=[25, 50])
    parser.add_argument("--inits", default="minilm,synth", help="which of minilm,synth,recomb to run")
    parser.add_argument("--recombine", type=int, default=50, help="recombined copies per form for recomb")
    parser.add_argument(
        "--synthetic-init",
        type=Path,
        default=ROOT / "benchmarks" / "runs" / "synthetic" / "pretrain-1000" / "best",
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "runs" / "few-forms")
    parser.add_argument("--epochs", type=int, default=10, help="the full-data recipe's epochs over 149 forms")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    args.order = "annotation"  # the pre-training table's protocol (finetune_recipe reads it)
    inits = {"minilm": "minilm", "synth": str(args.synthetic_init), "recomb": ""}  # recomb: made per run
    recorded = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    for count in args.forms:
        for init_name in args.inits.split(","):
            if run_name(init_name, count, args.seed) in recorded:
                continue
            result = run_one(count, init_name, inits[init_name], args)
            print(f"[{result['run']}] test entity F1 {result['entity_f1']:.4f}", flush=True)
            save({result["run"]: result})


if __name__ == "__main__":
    main()
