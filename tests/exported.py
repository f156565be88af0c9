"""A tiny trained model and its ONNX export, built once per session by the `exported_model` fixture."""

from dataclasses import dataclass
from pathlib import Path

from model.config import tiny_config
from model.funsd import read_dataset
from model.train.export import export_onnx
from model.train.minilm import minilm_tokenizer_path
from model.train.trainer import Trainer, TrainOptions, prepare_trainer

EXPORT_TRAINING = TrainOptions(
    epochs=10, batch_size=1, lr=5e-3, lr_new=5e-3, warmup_ratio=0.05, validation_fraction=0.0, init="random"
)


@dataclass(frozen=True)
class ExportedModel:
    trainer: Trainer
    model_dir: Path  # the saved torch model
    onnx_dir: Path  # its ONNX serving folder (fp32 and int8)


def train_and_export(dataset: Path, out: Path) -> ExportedModel:
    config = tiny_config().with_changes(hidden_dropout=0.0, attention_dropout=0.0)
    trainer = prepare_trainer(
        read_dataset(dataset)[:2], out / "train", EXPORT_TRAINING, config, minilm_tokenizer_path()
    )
    trainer.run()
    export_onnx(out / "train" / "best", out / "onnx")
    return ExportedModel(trainer, out / "train" / "best", out / "onnx")
