"""What supervised pre-training on synthetic forms buys on FUNSD (issue 4).

Runs, all with the same fine-tuning recipe and seed (fixed epochs, no wall-clock budget, so that a busy
machine changes the time but not the result):

    minilm          fine-tune on FUNSD from MiniLM only                                    (a)
    minilm-entity-only  the same without the relation head (`--entity-only`: what joint training costs)
    minilm-rw<W>    the same with relation loss weight W instead of 1 (`--relation-weight W`)
    synth-<N>       pre-train on the first N synthetic pages (entity and relation heads on the synthetic
                    labels, the same number of pages seen for every N), then fine-tune on FUNSD   (b)
    synth-<N>-zero  the pre-trained model of the largest N on FUNSD test without fine-tuning      (c)

Each run records FUNSD test entity F1 and relation F1 with gold entities, the pre-training and the
fine-tuning wall time, in `benchmarks/results/synthetic_pretrain.json` (finished runs are kept and skipped
on a rerun) and in the table between the markers in BENCHMARKS.md.

    .venv/bin/docextract synth --out /tmp/synth --n 1500 --seed 7
    .venv/bin/python benchmarks/synthetic_pretrain.py --synth /tmp/synth --sizes 150,500,1500
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from funsd_ser import ROOT, git_sha, update_table
from training_log import TrainingLog

from model.artifact import InputOptions
from model.config import ModelConfig, minilm_config
from model.funsd import Document, read_dataset
from model.pretrain.recombined import recombined_pages as copies_of_held_in
from model.train.evaluate import evaluate_model_dir
from model.train.fine_tune import fine_tune
from model.train.start import resolve_start
from model.train.trainer import TrainOptions

RESULTS = ROOT / "benchmarks" / "results" / "synthetic_pretrain.json"
TABLE_START, TABLE_END = "<!-- synthetic_pretrain:start -->", "<!-- synthetic_pretrain:end -->"


def train(
    documents: list[Document], out: Path, options: TrainOptions, label: str, config: ModelConfig | None = None
) -> float:
    """Train into `out` (best epoch in `out/best`) from `options.init` with its input options and `config`
    (default: MiniLM's, whatever the start's), and return the wall time in seconds."""
    start = replace(resolve_start(options.init), config=config or minilm_config(), inputs=options.inputs)
    log = TrainingLog(label)
    fine_tune(documents, start, options, out, log)
    return log.seconds("fine-tuning")


def test_scores(model_dir: Path, test_dir: Path) -> dict[str, Any]:
    report = evaluate_model_dir(model_dir, test_dir)
    relations = report.relations_gold_entities
    return {
        "entity_f1": report.entities.micro.f1,
        "relation_f1_gold_entities": relations.f1 if relations else None,
        "per_label": report.entities.to_dict(),
    }


def scored_run(name: str, init: str, args: argparse.Namespace, recipe: TrainOptions) -> dict[str, Any]:
    out = args.work / name
    seconds = train(read_dataset(args.data / "training_data"), out, replace(recipe, init=init), name)
    return {"finetune_seconds": round(seconds, 1), **test_scores(out / "best", args.data / "testing_data")}


def pretrain(
    documents: list[Document], run: str, args: argparse.Namespace, recipe: TrainOptions
) -> tuple[Path, float]:
    """Pre-train on `documents` for about `args.pretrain_pages` pages seen, into `pretrain-<run>`."""
    epochs = max(1, round(args.pretrain_pages / len(documents)))
    options = replace(
        recipe, epochs=epochs, validation_fraction=0.05, init=args.pretrain_init, bf16=args.pretrain_bf16
    )
    config = minilm_config().with_changes(attention_dropout=args.pretrain_attention_dropout)
    out = args.work / f"pretrain-{run}"
    return out / "best", train(documents, out, options, out.name, config)


def synthetic_pages(size: int, args: argparse.Namespace) -> list[Document]:
    documents = read_dataset(args.synth)[:size]
    if len(documents) < size:
        raise SystemExit(f"{args.synth} has {len(documents)} pages, fewer than {size}")
    return documents


def recombined_pages(args: argparse.Namespace, recipe: TrainOptions) -> list[Document]:
    """`args.recombine` recombined variants of each FUNSD training form outside the fine-tuning validation
    split (so that the epoch picked on validation is not picked on forms pre-training saw)."""
    return copies_of_held_in(read_dataset(args.data / "training_data"), args.recombine, recipe)


def finetune_recipe(args: argparse.Namespace) -> TrainOptions:
    """The fine-tuning recipe every run shares (fixed epochs, no wall-clock budget)."""
    return TrainOptions(
        epochs=args.epochs,
        seed=args.seed,
        inputs=InputOptions(word_order=args.order, box_level="word"),
        relation_weight=1.0,  # what the recorded runs used (TrainOptions' default has since become 0.5)
    )


def run_all(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    recipe = finetune_recipe(args)
    common = {"seed": args.seed, "epochs": args.epochs, "word_order": args.order, "git_sha": git_sha()}

    def record(name: str, result: dict[str, Any]) -> None:
        results[name] = {"run": name, **common, **result}
        save(results)

    if args.relation_weight is not None:
        name = f"minilm-rw{args.relation_weight:g}"
        weighted = replace(recipe, relation_weight=args.relation_weight)
        record(
            name, {"pretrain_pages": 0, "pretrain_seconds": 0.0, **scored_run(name, "minilm", args, weighted)}
        )
        return
    if args.entity_only and "minilm-entity-only" not in results:
        entity_only = replace(recipe, relations=False)
        tuned = scored_run("minilm-entity-only", "minilm", args, entity_only)
        record("minilm-entity-only", {"pretrain_pages": 0, "pretrain_seconds": 0.0, **tuned})
        return
    if "minilm" not in results:
        record(
            "minilm",
            {"pretrain_pages": 0, "pretrain_seconds": 0.0, **scored_run("minilm", "minilm", args, recipe)},
        )
    sizes = sorted(args.sizes, reverse=True)  # the headline result first
    corpora = [(f"{size}{args.tag}", lambda size=size: synthetic_pages(size, args)) for size in sizes]
    if args.recombine:
        corpora = [(f"recombined-{args.recombine}{args.tag}", lambda: recombined_pages(args, recipe))]
    for index, (run, corpus) in enumerate(corpora):
        name = run if args.recombine else f"synth-{run}"
        if name in results:
            continue
        documents = corpus()
        model_dir, seconds = pretrain(documents, run, args, recipe)
        timing = {"pretrain_pages": len(documents), "pretrain_seconds": round(seconds, 1)}
        if index == 0:
            record(f"{name}-zero", {**timing, **test_scores(model_dir, args.data / "testing_data")})
        record(name, {**timing, **scored_run(name, str(model_dir), args, recipe)})


def run_model_dir(name: str, work: Path) -> Path:
    """Where run `name` keeps its best model (`synth-N-zero` is the pre-trained `pretrain-N` itself)."""
    if name.endswith("-zero"):
        return work / f"pretrain-{name.removeprefix('synth-').removesuffix('-zero')}" / "best"  # any corpus
    return work / name / "best"


def rescore(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    """Score every recorded run's model again on FUNSD test (e.g. after a decoding change)."""
    for name, result in list(results.items()):
        model_dir = run_model_dir(name, args.work)
        if not model_dir.is_dir():
            print(f"[{name}] {model_dir} is gone; kept as recorded", flush=True)
            continue
        scores = test_scores(model_dir, args.data / "testing_data")
        print(f"[{name}] test entity F1 {result['entity_f1']:.4f} -> {scores['entity_f1']:.4f}", flush=True)
        results[name] = {**result, **scores, "rescored_at": git_sha()}
        save(results)


def save(results: dict[str, dict[str, Any]]) -> None:
    """Merge into the results file (another run of this script may be recording other runs)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if RESULTS.exists():
        results = {**json.loads(RESULTS.read_text(encoding="utf-8")), **results}
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    update_table(markdown_table(results), TABLE_START, TABLE_END)


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| run | synthetic pages | pre-training | fine-tuning | test entity F1 | RE F1 (gold entities) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results.items():
        tune = f"{r['finetune_seconds'] / 60:.1f} min" if "finetune_seconds" in r else "none"
        relation = r["relation_f1_gold_entities"]
        cells = [name, r["pretrain_pages"], f"{r['pretrain_seconds'] / 60:.1f} min", tune]
        cells += [f"**{r['entity_f1']:.4f}**", f"{relation:.4f}" if relation is not None else "-"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synth", type=Path, help="a `docextract synth` folder (needed unless --sizes '')")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "runs" / "synthetic")
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=[150, 500, 1500]
    )
    parser.add_argument("--pretrain-pages", type=int, default=1500, help="pages seen in each pre-training")
    parser.add_argument(
        "--recombine",
        type=int,
        default=0,
        help="pre-train instead on K recombined variants of each FUNSD training form (run recombined-K)",
    )
    parser.add_argument(
        "--pretrain-init", default="minilm", help="where pre-training starts: minilm or a model folder"
    )
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs on FUNSD")
    parser.add_argument(
        "--pretrain-bf16", action="store_true", help="pre-training steps under bfloat16 autocast"
    )
    parser.add_argument(
        "--pretrain-attention-dropout",
        type=float,
        default=ModelConfig.attention_dropout,
        help="attention dropout while pre-training (fine-tuning keeps the default)",
    )
    parser.add_argument("--order", choices=("annotation", "reading"), default="annotation")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--entity-only", action="store_true", help="only the MiniLM run without the relation head (issue 5)"
    )
    parser.add_argument(
        "--relation-weight", type=float, help="only the MiniLM run with this relation loss weight (issue 5)"
    )
    parser.add_argument("--fresh", action="store_true", help="forget recorded runs")
    parser.add_argument(
        "--tag",
        default="",
        help="a corpus variant: runs are named synth-N<TAG>, pretrain-N<TAG> (e.g. -wrap)",
    )
    parser.add_argument(
        "--rescore", action="store_true", help="re-score the recorded runs' models with the current decoding"
    )
    args = parser.parse_args()
    if args.sizes and args.synth is None and not (args.rescore or args.recombine):
        parser.error("--synth is required to pre-train (or pass --sizes '' for the MiniLM-only run)")
    results = {} if args.fresh or not RESULTS.exists() else json.loads(RESULTS.read_text(encoding="utf-8"))
    if args.rescore:
        rescore(args, results)
        return
    run_all(args, results)


if __name__ == "__main__":
    main()
