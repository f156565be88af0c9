"""FUNSD relation extraction (key -> value links) benchmark, with the joint entity + relation model.

Trains entity and relation heads jointly on FUNSD `training_data` (question -> answer links, reading
order, word boxes; best epoch on a validation split carved from the training data), then scores on
`testing_data`: relation F1 with gold entities (the LayoutXLM / BROS protocol), relation F1 end to end from
predicted entities, and entity F1. Results go to `benchmarks/results/funsd_re.json` and the table between
the markers in BENCHMARKS.md.

    .venv/bin/python benchmarks/funsd_re.py --budget-minutes 35
    .venv/bin/python benchmarks/funsd_re.py --model benchmarks/runs/joint/best   # score a trained model
    .venv/bin/python benchmarks/funsd_re.py --init benchmarks/runs/synthetic/pretrain-3000/best
"""

import argparse
import json
from dataclasses import replace
from pathlib import Path

from funsd_ser import ROOT, git_sha, update_table
from training_log import TrainingLog

from model.artifact import ArtifactMeta, InputOptions
from model.config import minilm_config
from model.funsd import read_dataset
from model.train.evaluate import EvaluationReport, evaluate_model_dir
from model.train.fine_tune import fine_tune, history_of
from model.train.start import resolve_start
from model.train.trainer import TrainOptions

RESULTS = ROOT / "benchmarks" / "results" / "funsd_re.json"
MARKERS = ("<!-- funsd_re:start -->", "<!-- funsd_re:end -->")
ANCHORS = (
    ("XLM-RoBERTa-base, text only (paper)", 0.2659),
    ("LayoutXLM-base (paper)", 0.5483),
    ("BROS-base (paper)", 0.7146),
    ("GeoLayoutLM (paper)", 0.8945),
)


def train_joint(data: Path, out: Path, options: TrainOptions) -> tuple[float, int]:
    start = replace(resolve_start(options.init), config=minilm_config(), inputs=options.inputs)
    log = TrainingLog("joint")
    fine_tune(read_dataset(data / "training_data"), start, options, out, log)
    return log.seconds("fine-tuning"), len(history_of(out))


START = {True: "MiniLM-L6 init", False: "synthetic pre-training"}


def table(result: dict[str, object]) -> str:
    start = START[result.get("init", "minilm") == "minilm"]
    lines = [
        "| model | relation F1, gold entities | relation F1, end to end | entity F1 |",
        "| --- | --- | --- | --- |",
        f"| docextract joint ({start}, {fine_tuning(result)}) "
        f"| **{result['relation_f1_gold']:.4f}** | {result['relation_f1_end_to_end']:.4f} "
        f"| {result['entity_f1']:.4f} |",
    ]
    lines += [f"| {name} | {f1:.4f} | | |" for name, f1 in ANCHORS]
    return "\n".join(lines)


def fine_tuning(result: dict[str, object]) -> str:
    soup_of = result.get("soup_of")
    if isinstance(soup_of, list):
        return f"weight average of {len(soup_of)} fine-tunings"
    if result["epochs_run"] is None:  # scored with --model: the model's own training record says how
        return "one fine-tuning"
    return f"{result['epochs_run']} epochs"


def result_record(
    report: EvaluationReport, model_dir: Path, seconds: float | None, epochs: int | None
) -> dict:
    assert report.relations_gold_entities is not None and report.relations_end_to_end is not None
    return {
        "relation_f1_gold": report.relations_gold_entities.f1,
        "relation_gold": report.relations_gold_entities.to_dict(),
        "relation_f1_end_to_end": report.relations_end_to_end.f1,
        "relation_end_to_end": report.relations_end_to_end.to_dict(),
        "entity_f1": report.entities.micro.f1,
        "entities": report.entities.to_dict(),
        "train_wall_seconds": round(seconds, 1) if seconds is not None else None,
        "epochs_run": epochs,
        "model_dir": str(model_dir),
        "git_sha": git_sha(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "runs" / "joint")
    parser.add_argument("--model", type=Path, help="score this trained model instead of training one")
    parser.add_argument(
        "--init",
        default=None,
        help="minilm (default), or a model folder to fine-tune from; with --model: the recorded start",
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--relation-weight", type=float, default=TrainOptions.relation_weight)
    parser.add_argument("--budget-minutes", type=float, default=35.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lr", type=float, default=TrainOptions.lr, help="lr of the pre-trained weights")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="results file (e.g. a candidate's); BENCHMARKS.md's table is updated from the default one only",
    )
    args = parser.parse_args()
    seconds = epochs = None
    model_dir = args.model
    if model_dir is None:
        options = TrainOptions(
            epochs=args.epochs,
            seed=args.seed,
            budget_seconds=args.budget_minutes * 60,
            inputs=InputOptions(word_order="reading", box_level="word"),
            relation_pairs=(("question", "answer"),),
            init=args.init or "minilm",
            relation_weight=args.relation_weight,
            lr=args.lr,
        )
        seconds, epochs = train_joint(args.data, args.work, options)
        model_dir = args.work / "best"
    report = evaluate_model_dir(model_dir, args.data / "testing_data", threshold=args.threshold)
    previous = json.loads(args.results.read_text(encoding="utf-8")) if args.results.exists() else {}
    meta = ArtifactMeta.load(model_dir)
    same_model = (previous.get("model_dir"), previous.get("created")) == (str(model_dir), meta.created)
    if args.model is not None and same_model:  # a re-score: the folder may since hold another model
        seconds, epochs, args.init = previous["train_wall_seconds"], previous["epochs_run"], previous["init"]
    result = result_record(report, model_dir, seconds, epochs)
    result["created"] = meta.created
    training = meta.training
    result["init"] = args.init or training.get("init") or "minilm"  # with --model: how that model started
    if "soup_of" in training:
        result["soup_of"] = training["soup_of"]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.results == RESULTS:
        update_table(table(result), *MARKERS)
    print(table(result))


if __name__ == "__main__":
    main()
