"""What the LayoutLMv2 pre-training objectives (MVLM, TIA, TIM) buy on FUNSD (issue 10).

Pre-trains the MiniLM-initialised encoder with the three objectives on unlabelled pages (the FUNSD training
forms and the first `--synthetic-pages` pages of a `docextract synth` folder: their words and boxes, labels
unused; the annotations' words stand in for OCR so that the measurement does not spend its CPU on tesseract,
`docextract pretrain --images` does the same from OCR), for a wall-clock budget, then fine-tunes on FUNSD with
exactly the recipe and seed of the `minilm` run of `benchmarks/synthetic_pretrain.py` and records the run
`mvlm-tia-tim` next to it (same results file and table). The loss curves go to `benchmarks/results/`.

    .venv/bin/python benchmarks/pretrain_objectives.py --synth /tmp/synth --budget-minutes 20
"""

import argparse
import shutil
import time
from pathlib import Path

from funsd_ser import ROOT, git_sha
from synthetic_pretrain import fine_tune, finetune_recipe, save

from model.config import minilm_config
from model.funsd import Document, read_dataset
from model.pretrain.data import PretrainPage, write_pages
from model.pretrain.loop import PretrainOptions, run_pretraining

RUN = "mvlm-tia-tim"


def unlabelled(document: Document) -> PretrainPage:
    words = [w for entity in document.entities for w in entity.words]
    return PretrainPage(
        name=document.name,
        image=str(document.image_path.resolve()),
        width=document.width,
        height=document.height,
        words=[w.text for w in words],
        boxes=[list(w.box_px) for w in words],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--synth", type=Path, help="a `docextract synth` folder")
    parser.add_argument("--synthetic-pages", type=int, default=1000)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "funsd")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "runs" / "synthetic")
    parser.add_argument("--budget-minutes", type=float, default=20.0)
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs on FUNSD")
    parser.add_argument("--order", choices=("annotation", "reading"), default="annotation")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    documents = read_dataset(args.data / "training_data")
    if args.synth is not None:
        documents += read_dataset(args.synth)[: args.synthetic_pages]
    out = args.work / "pretrain-objectives"
    write_pages([unlabelled(d) for d in documents], out / "pages.jsonl")
    options = PretrainOptions(steps=100_000, budget_seconds=args.budget_minutes * 60, seed=args.seed)

    def log(event: dict[str, float]) -> None:
        if event["step"] % 25 == 0:
            print(f"[{RUN}] step {int(event['step'])}: "
                  + " ".join(f"{k} {event[k]:.3f}" for k in ("mvlm", "tia", "tim")), flush=True)  # fmt: skip

    started = time.monotonic()
    history = run_pretraining(
        [unlabelled(d) for d in documents], out, out, options, minilm_config(), resume=False, on_progress=log
    )
    seconds = time.monotonic() - started
    for objective in ("mvlm", "tia", "tim"):
        shutil.copyfile(
            out / f"loss_{objective}.png", ROOT / "benchmarks" / "results" / f"loss_{objective}.png"
        )
    tuned = fine_tune(RUN, str(out / "model"), args, finetune_recipe(args))
    last = history[-1] if history else {}
    record = {"run": RUN, "git_sha": git_sha(), "seed": args.seed, "epochs": args.epochs}
    record |= {
        "word_order": args.order,
        "pretrain_pages": len(documents),
        "pretrain_seconds": round(seconds, 1),
    }
    record |= {
        "pretrain_steps": len(history),
        "final_losses": {k: last.get(k) for k in ("mvlm", "tia", "tim")},
    }
    save({RUN: {**record, **tuned}})


if __name__ == "__main__":
    main()
