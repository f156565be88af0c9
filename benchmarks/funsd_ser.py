"""FUNSD semantic entity recognition benchmark.

Trains on FUNSD `training_data` (best epoch chosen on a validation split carved from it, never on test),
evaluates on `testing_data`, and records entity-level F1 (seqeval-style exact spans) per run in
`benchmarks/results/funsd_ser.json` and in the table between the markers in BENCHMARKS.md.

    .venv/bin/python benchmarks/funsd_ser.py --runs papers,reading --budget-minutes 45
    .venv/bin/python benchmarks/funsd_ser.py --runs ablations --budget-minutes 12

Runs (all with the same seed, epochs and wall-clock budget):
    papers          annotation order, word boxes (the LayoutLM papers' protocol)
    reading         geometric reading order, word boxes (what the service sees from OCR)
    reading-line    reading order, line boxes
    no-visual       reading order, word boxes, no visual tokens
    no-spatial      reading order, word boxes, no spatial-aware attention bias
    random-init     reading order, word boxes, random text stream instead of MiniLM
    papers-synth    the papers' protocol, starting from a synthetic pre-training checkpoint
                    (`--synthetic-init`, made by `benchmarks/synthetic_pretrain.py`) instead of MiniLM
    papers-synth-full  the same on all training forms, no validation split: run it with `--epochs` set to
                    the best epoch papers-synth's validation chose (the last epoch's model is kept)
"""

import argparse
import json
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

from training_log import TrainingLog

from model.artifact import InputOptions
from model.config import minilm_config
from model.funsd import read_dataset
from model.nn.network import device_for
from model.train.augment import Augmentation
from model.train.evaluate import evaluate_model_dir
from model.train.fine_tune import fine_tune, history_of
from model.train.soup import average_models
from model.train.start import resolve_start
from model.train.trainer import TrainOptions

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "funsd_ser.json"
TABLE_START, TABLE_END = "<!-- funsd_ser:start -->", "<!-- funsd_ser:end -->"
ANCHORS = (
    ("BERT-base (paper)", 0.6026),
    ("LayoutLM-base (paper)", 0.7866),
    ("LayoutLMv2-base (paper)", 0.8276),
)

SYNTHETIC_INIT = "synthetic"  # stands for the --synthetic-init folder
RUNS: dict[str, dict[str, object]] = {
    "papers": {"word_order": "annotation", "box_level": "word"},
    "reading": {"word_order": "reading", "box_level": "word"},
    "reading-line": {"word_order": "reading", "box_level": "line"},
    "no-visual": {"word_order": "reading", "box_level": "word", "use_visual": False},
    "no-spatial": {"word_order": "reading", "box_level": "word", "use_spatial_bias": False},
    "random-init": {"word_order": "reading", "box_level": "word", "init": "random"},
    "papers-synth": {"word_order": "annotation", "box_level": "word", "init": SYNTHETIC_INIT},
    "papers-synth-full": {
        "word_order": "annotation",
        "box_level": "word",
        "init": SYNTHETIC_INIT,
        "validation_fraction": 0.0,
    },
}
GROUPS = {"ablations": ["reading", "reading-line", "no-visual", "no-spatial", "random-init"]}


def git_sha() -> str:
    try:
        command = ["git", "rev-parse", "--short", "HEAD"]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    except OSError:  # no git (e.g. a copied tree on a GPU machine)
        return "unknown"
    return result.stdout.strip() or "unknown"


def run_one(
    name: str,
    data: Path,
    work: Path,
    base: TrainOptions,
    synthetic_init: Path,
    tag: str = "",
    tokenizer: Path | None = None,
    attention_dropout: float | None = None,
) -> dict[str, object]:
    spec = RUNS[name]
    inputs = InputOptions(word_order=str(spec["word_order"]), box_level=str(spec["box_level"]))
    init = str(spec.get("init", "minilm"))
    fraction = float(spec.get("validation_fraction", base.validation_fraction))
    options = replace(
        base,
        inputs=inputs,
        init=str(synthetic_init) if init == SYNTHETIC_INIT else init,
        validation_fraction=fraction,
    )
    config = minilm_config().with_changes(
        use_visual=bool(spec.get("use_visual", True)),
        use_spatial_bias=bool(spec.get("use_spatial_bias", True)),
    )
    if attention_dropout is not None:
        config = config.with_changes(attention_dropout=attention_dropout)
    label = f"{name}+{tag}" if tag else name
    out = work / label
    start = resolve_start(options.init)
    start = replace(start, config=config, inputs=inputs, tokenizer=tokenizer or start.tokenizer)
    log = TrainingLog(label)
    fine_tune(read_dataset(data / "training_data"), start, options, out, log)
    train_seconds = log.seconds("fine-tuning")
    history = history_of(out)
    kept = out / ("best" if fraction > 0 else "last")  # no validation split: the model after the last epoch
    report = evaluate_model_dir(kept, data / "testing_data").entities
    best = max(history, key=lambda h: h.val_f1) if fraction > 0 else history[-1]
    return {
        "run": label,
        "spec": spec,
        "lr": options.lr,
        "lr_new": options.lr_new,
        "batch_size": options.batch_size,
        "device": str(device_for(0)),
        "ema_decay": options.ema_decay,
        "bf16": options.bf16,
        "attention_dropout": config.attention_dropout,
        "augmentation": asdict(options.augmentation),
        "test": report.to_dict(),
        "f1": report.micro.f1,
        "precision": report.micro.precision,
        "recall": report.micro.recall,
        "best_epoch": best.epoch,
        "epochs_run": len(history),
        "best_val_f1": best.val_f1,
        "train_wall_seconds": round(train_seconds, 1),
        "seed": options.seed,
        "budget_minutes": (options.budget_seconds or 0) / 60,
        "max_epochs": options.epochs,
        "git_sha": git_sha(),
        "model_dir": str(kept),
        "init": options.init,
    }


def record_result(
    name: str | None, result: dict[str, object], path: Path = RESULTS
) -> dict[str, dict[str, object]]:
    """Merge one run into the results file (re-read first: parallel invocations keep their runs)."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    if name is not None:
        results[name] = result
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return results


def rescore(data: Path) -> dict[str, dict[str, object]]:
    """Score every recorded run's best model again on the test set (e.g. after a decoding change); the
    training record (best epoch, wall time) stays as it was."""
    results: dict[str, dict[str, object]] = {}
    for name, result in (json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}).items():
        report = evaluate_model_dir(Path(str(result["model_dir"])), data / "testing_data").entities
        scores = {"f1": report.micro.f1, "precision": report.micro.precision, "recall": report.micro.recall}
        print(f"[{name}] test entity F1 {result['f1']:.4f} -> {scores['f1']:.4f}", flush=True)
        rescored = {**result, **scores, "test": report.to_dict(), "rescored_at": git_sha()}
        results = record_result(name, rescored)
    return results


RECIPE_KEYS = ("spec", "lr", "lr_new", "batch_size", "bf16", "attention_dropout")


def soup_one(names: list[str], tag: str, data: Path, work: Path, results: Path) -> dict[str, object]:
    """Average the recorded runs' kept models (`model.train.soup`) and score the average on the test set. The
    runs are meant to have trained side by side, one thread each: the soup's wall time is the longest of
    theirs."""
    recorded = json.loads(results.read_text()) if results.is_file() else {}
    missing = [name for name in names if name not in recorded]
    if missing:
        raise SystemExit(f"--soup: no recorded runs {missing} in {results}")
    runs = [recorded[name] for name in names]
    label = f"{names[0].split('+')[0]}+{tag}"
    out = average_models([Path(str(run["model_dir"])) for run in runs], work / label)
    report = evaluate_model_dir(out, data / "testing_data").entities
    return {
        **{key: runs[0].get(key) for key in RECIPE_KEYS},
        "run": label,
        "soup_of": names,
        "ingredient_f1": [run["f1"] for run in runs],
        "test": report.to_dict(),
        "f1": report.micro.f1,
        "precision": report.micro.precision,
        "recall": report.micro.recall,
        "best_epoch": "+".join(str(run["best_epoch"]) for run in runs),
        "epochs_run": "+".join(str(run["epochs_run"]) for run in runs),
        "train_wall_seconds": max(float(str(run["train_wall_seconds"])) for run in runs),
        "seed": [run["seed"] for run in runs],
        "git_sha": git_sha(),
        "model_dir": str(out),
        "init": runs[0]["init"],
    }


def markdown_table(results: dict[str, dict[str, object]]) -> str:
    lines = [
        "| run | word order | boxes | test entity F1 | P | R | best epoch / run | train wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = {name: i for i, name in enumerate(RUNS)}
    for name in sorted(results, key=lambda key: (order.get(key.split("+")[0], len(order)), key)):
        r = results[name]
        spec = r["spec"]
        assert isinstance(spec, dict)
        minutes = float(r["train_wall_seconds"]) / 60
        cells = [name, spec["word_order"], spec["box_level"], f"**{r['f1']:.4f}**", f"{r['precision']:.4f}"]
        cells += [f"{r['recall']:.4f}", f"{r['best_epoch']} / {r['epochs_run']}", f"{minutes:.1f} min"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [f"| {label} | annotation | word | {f1:.4f} | | | | |" for label, f1 in ANCHORS]
    return "\n".join(lines)


def update_table(table: str, start: str = TABLE_START, end: str = TABLE_END) -> None:
    """Put `table` between the `start` and `end` markers of BENCHMARKS.md (appended when missing)."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8")
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = f"{head}{start}\n{table}\n{end}{rest.split(end, 1)[1]}"
    else:
        text += f"\n{start}\n{table}\n{end}\n"
    path.write_text(text, encoding="utf-8")


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "runs")
    parser.add_argument(
        "--runs", default="papers,reading", help=f"comma list of {sorted(RUNS)} or 'ablations'"
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--budget-minutes", type=float, default=45.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lr", type=float, default=TrainOptions.lr, help="lr of the pre-trained weights")
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        help="evaluate and keep an exponential average of the weights",
    )
    parser.add_argument("--token-mask-rate", type=float, default=0.0, help="augmentation: word tokens masked")
    parser.add_argument(
        "--box-jitter", type=int, default=0, help="augmentation: box shift on the 0-1000 grid"
    )
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="tokenizer.json (default: the start's: the MiniLM package's, or the init model folder's)",
    )
    parser.add_argument("--lr-new", type=float, default=TrainOptions.lr_new, help="lr of the new parameters")
    parser.add_argument("--batch-size", type=int, default=TrainOptions.batch_size)
    parser.add_argument("--bf16", action="store_true", help="training steps under bfloat16 autocast")
    parser.add_argument(
        "--attention-dropout", type=float, default=None, help="attention-probability dropout (default 0.1)"
    )
    parser.add_argument("--tag", default="", help="a recipe variant: recorded as RUN+TAG, in its own folder")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="results file; BENCHMARKS.md's table is updated only from the default one",
    )
    parser.add_argument(
        "--soup",
        default=None,
        help="comma list of recorded runs to average (model soup) and score, recorded as RUN+TAG",
    )
    parser.add_argument(
        "--rescore", action="store_true", help="re-score the recorded runs' models with the current decoding"
    )
    parser.add_argument(
        "--synthetic-init",
        type=Path,
        default=ROOT / "benchmarks" / "runs" / "synthetic" / "pretrain-1000" / "best",
        help="the pre-trained model the papers-synth run starts from",
    )
    return parser


def base_options(args: argparse.Namespace) -> TrainOptions:
    """The fine-tuning recipe every run of one invocation shares (entity head only)."""
    return TrainOptions(
        epochs=args.epochs,
        seed=args.seed,
        budget_seconds=args.budget_minutes * 60,
        relations=False,
        lr=args.lr,
        lr_new=args.lr_new,
        batch_size=args.batch_size,
        ema_decay=args.ema_decay,
        augmentation=Augmentation(args.token_mask_rate, args.box_jitter),
        bf16=args.bf16,
    )


def record_soup(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    result = soup_one(args.soup.split(","), args.tag, args.data, args.work, args.results)
    print(f"[{result['run']}] test entity F1 {result['f1']:.4f} (ingredients {result['ingredient_f1']})")
    return record_result(str(result["run"]), result, args.results)


def train_runs(args: argparse.Namespace, names: list[str]) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = record_result(None, {}, args.results)
    for name in names:
        result = run_one(
            name,
            args.data,
            args.work,
            base_options(args),
            args.synthetic_init,
            args.tag,
            args.tokenizer,
            args.attention_dropout,
        )
        results = record_result(str(result["run"]), result, args.results)
        print(f"[{result['run']}] test entity F1 {result['f1']:.4f}", flush=True)
    return results


def main() -> None:
    parser = argument_parser()
    args = parser.parse_args()
    if args.rescore:
        update_table(markdown_table(rescore(args.data)))
        return
    if args.soup:
        if not args.tag:
            parser.error("--soup needs a --tag to name the average")
        results = record_soup(args)
    else:
        names = [n for item in args.runs.split(",") for n in GROUPS.get(item, [item])]
        unknown = [n for n in names if n not in RUNS]
        if unknown:
            parser.error(f"unknown runs {unknown}")
        results = train_runs(args, names)
    if args.results == RESULTS:
        table = markdown_table(results)
        update_table(table)
        print(table)


if __name__ == "__main__":
    main()
