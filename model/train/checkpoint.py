"""Saving and loading trained models (safetensors weights + JSON metadata + tokenizer). Needs torch."""

import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from model.artifact import TOKENIZER_FILE, WEIGHTS_FILE, ArtifactMeta
from model.features import load_tokenizer, vocab_sha256
from model.nn.network import EntityTagger
from model.relations import GEOMETRY_FEATURES


def save_model(
    model: EntityTagger, meta: ArtifactMeta, tokenizer_path: Path, directory: Path, half: bool = False
) -> Path:
    """Write weights (fp32, or fp16 with `half` for shipping), metadata and tokenizer into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    state = {
        k: (v.to(dtype) if v.is_floating_point() else v).cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(directory / WEIGHTS_FILE))
    if Path(tokenizer_path).resolve() != (directory / TOKENIZER_FILE).resolve():
        shutil.copyfile(tokenizer_path, directory / TOKENIZER_FILE)
    meta.save(directory)
    return directory


def replace_folder(target: Path, write: Callable[[Path], None]) -> Path:
    """Write a folder's new contents beside it, then swap them in, so that a process killed at any moment
    leaves the old folder or the new one whole (`TARGET.old` between the two renames: `whole_folder`)."""
    partial, old = target.with_name(f"{target.name}.partial"), target.with_name(f"{target.name}.old")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write(partial)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def whole_folder(target: Path) -> Path:
    """`target`, or the version before it when a crash came between the two renames of `replace_folder`."""
    old = target.with_name(f"{target.name}.old")
    return old if not target.exists() and old.exists() else target


def build_network(meta: ArtifactMeta) -> EntityTagger:
    """An untrained network with the heads the metadata describes."""
    relation_labels = len(meta.label_set.labels) if meta.relation_schema else 0
    return EntityTagger(meta.config, meta.label_set.num_tags, relation_labels, GEOMETRY_FEATURES)


def load_model(directory: Path) -> tuple[EntityTagger, ArtifactMeta]:
    """Load a saved model in fp32, checking that its tokenizer is the one it was trained with."""
    directory = Path(directory)
    meta = ArtifactMeta.load(directory)
    tokenizer = load_tokenizer(directory / TOKENIZER_FILE)
    if vocab_sha256(tokenizer) != meta.vocab_sha256:
        raise ValueError(f"{directory}: tokenizer vocabulary does not match the model's vocab_sha256")
    model = build_network(meta)
    state = {
        k: v.float() if v.is_floating_point() else v
        for k, v in load_file(str(directory / WEIGHTS_FILE)).items()
    }
    model.load_state_dict(state)
    model.eval()
    return model, meta
