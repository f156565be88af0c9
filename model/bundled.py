"""The default model shipped inside the package (`model/bundled/`): fp16 weights, metadata, tokenizer,
model card. No torch."""

from pathlib import Path

from model.artifact import META_FILE

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"


def bundled_model_dir() -> Path:
    """Folder of the bundled default model; FileNotFoundError when the package was built without it."""
    if not (BUNDLED_DIR / META_FILE).is_file():
        raise FileNotFoundError(f"no bundled model in {BUNDLED_DIR}: train one with `docextract train`")
    return BUNDLED_DIR
