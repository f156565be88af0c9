"""Copy a trained model into `model/bundled/` as the shipped default: fp16 weights (half the size),
metadata and tokenizer. The model card (`model/bundled/MODEL_CARD.md`) is written by hand.

    .venv/bin/python scripts/bundle_model.py benchmarks/runs/joint/best
"""

import sys
from pathlib import Path

from model.artifact import TOKENIZER_FILE
from model.bundled import BUNDLED_DIR
from model.train.checkpoint import load_model, save_model


def main(source: Path) -> None:
    model, meta = load_model(source)
    save_model(model, meta, source / TOKENIZER_FILE, BUNDLED_DIR, half=True)
    for path in sorted(BUNDLED_DIR.iterdir()):
        print(f"{path} {path.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
