import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.artifact import ArtifactMeta, InputOptions
from model.config import FUNSD_ENTITY_LABELS, LabelSet, tiny_config
from model.dataset import PageExample
from model.features import load_tokenizer
from model.funsd import read_dataset
from model.relations import RelationSchema
from model.train.augment import Augmentation
from model.train.checkpoint import load_model, save_model
from model.train.evaluate import encode_page, evaluate_model_dir, predict_word_logits
from model.train.initial_weights import build_model, initialised_model
from model.train.minilm import minilm_tokenizer_path
from model.train.trainer import (
    LinearSchedule,
    TrainOptions,
    apply_step,
    parameter_groups,
    prepare_trainer,
    train_step,
)

TINY_OPTIONS = TrainOptions(
    epochs=30, batch_size=1, lr=5e-3, lr_new=5e-3, warmup_ratio=0.05, validation_fraction=0.0, init="random"
)
NO_DROPOUT = tiny_config().with_changes(hidden_dropout=0.0, attention_dropout=0.0)


@pytest.fixture(scope="module")
def two_documents(synthetic_dataset: Path):
    return read_dataset(synthetic_dataset)[:2]


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory: pytest.TempPathFactory, two_documents):
    out = tmp_path_factory.mktemp("overfit")
    trainer = prepare_trainer(two_documents, out, TINY_OPTIONS, NO_DROPOUT, minilm_tokenizer_path())
    return trainer, trainer.run(), out


def test_tiny_model_overfits_two_documents(overfit_run):
    trainer, history, _ = overfit_run
    assert history[-1].loss < history[0].loss / 5
    assert max(h.val_f1 for h in history) == 1.0
    # the synthetic forms have links, so the relation head trains jointly and recovers them
    assert trainer.meta.relation_schema == RelationSchema((("header", "question"), ("question", "answer")))
    assert max(h.val_relation_f1 or 0.0 for h in history) >= 0.95


def _rotated_dataset(source: Path, out: Path, count: int = 2) -> Path:
    """The forms turned by 180 degrees: every value now sits left of or above its key."""
    for sub in ("images", "annotations"):
        (out / sub).mkdir(parents=True)
    for path in sorted((source / "annotations").glob("*.json"))[:count]:
        image = Image.open(source / "images" / f"{path.stem}.png")
        width, height = image.size
        image.rotate(180).save(out / "images" / f"{path.stem}.png")
        annotation = json.loads(path.read_text())
        for entity in annotation["form"]:
            for item in [entity, *entity["words"]]:
                x0, y0, x1, y1 = item["box"]
                item["box"] = [width - x1, height - y1, width - x0, height - y0]
        (out / "annotations" / path.name).write_text(json.dumps(annotation))
    return out


def test_values_left_of_or_above_their_keys_are_linked(synthetic_dataset: Path, tmp_path: Path):
    documents = read_dataset(_rotated_dataset(synthetic_dataset, tmp_path / "rotated"))
    question = next(e for e in documents[0].entities if e.label == "question")
    answer_id = next(b for a, b in documents[0].links if a == question.id)
    answer = next(e for e in documents[0].entities if e.id == answer_id)
    assert answer.box_px[2] <= question.box_px[0] or answer.box_px[3] <= question.box_px[1]
    options = replace(TINY_OPTIONS, relation_pairs=(("question", "answer"),))
    trainer = prepare_trainer(documents, tmp_path / "run", options, NO_DROPOUT, minilm_tokenizer_path())
    history = trainer.run()
    assert max(h.val_relation_f1 or 0.0 for h in history) >= 0.95


def test_best_model_is_saved_with_its_metadata_and_scores_the_same(
    overfit_run, synthetic_dataset: Path, tmp_path: Path
):
    trainer, _, out = overfit_run
    meta = ArtifactMeta.load(out / "best")
    assert meta.label_set == LabelSet(FUNSD_ENTITY_LABELS)
    assert meta.config == NO_DROPOUT and meta.metrics["validation_entity_f1"] == 1.0
    assert meta.vocab_sha256 == trainer.meta.vocab_sha256
    data = tmp_path / "two"
    for sub, pattern in (("annotations", "*.json"), ("images", "*.png")):
        (data / sub).mkdir(parents=True)
        for path in sorted((synthetic_dataset / sub).glob(pattern))[:2]:
            (data / sub / path.name).symlink_to(path)
    report = evaluate_model_dir(out / "best", data)
    assert report.entities.micro.f1 == 1.0
    assert report.relations_gold_entities is not None and report.relations_gold_entities.f1 >= 0.95
    assert report.relations_end_to_end is not None and report.relations_end_to_end.f1 >= 0.95


def test_fp16_artifact_round_trips(overfit_run, tmp_path: Path):
    trainer, _, out = overfit_run
    model, meta = load_model(out / "best")
    save_model(model, meta, out / "best" / "tokenizer.json", tmp_path / "half", half=True)
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < (
        out / "best" / "model.safetensors"
    ).stat().st_size
    half_model, _ = load_model(tmp_path / "half")
    page = trainer.train_pages[0]
    full = predict_word_logits(model, page, trainer.pad_id)
    np.testing.assert_array_equal(
        full.argmax(-1), predict_word_logits(half_model, page, trainer.pad_id).argmax(-1)
    )


def test_a_tokenizer_that_does_not_match_is_refused(overfit_run, tmp_path: Path):
    _, _, out = overfit_run
    model, meta = load_model(out / "best")
    other = ArtifactMeta(meta.config, meta.label_set, "0" * 64, meta.inputs)
    save_model(model, other, out / "best" / "tokenizer.json", tmp_path / "bad")
    with pytest.raises(ValueError, match="vocab_sha256"):
        load_model(tmp_path / "bad")


def test_resume_continues_from_the_last_epoch(two_documents, tmp_path: Path):
    options = TrainOptions(epochs=2, batch_size=2, validation_fraction=0.0, init="random")
    first = prepare_trainer(two_documents, tmp_path, options, tiny_config(), minilm_tokenizer_path())
    first.run()
    longer = TrainOptions(epochs=3, batch_size=2, validation_fraction=0.0, init="random")
    second = prepare_trainer(two_documents, tmp_path, longer, tiny_config(), minilm_tokenizer_path())
    assert second.resume() == 2
    assert second.step == first.step
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
    history = second.run(2)
    assert [h.epoch for h in history] == [1, 2, 3]


def test_the_weight_average_is_what_is_validated_saved_and_resumed(two_documents, tmp_path: Path):
    options = TrainOptions(epochs=1, batch_size=1, validation_fraction=0.0, init="random", ema_decay=0.9)
    first = prepare_trainer(two_documents, tmp_path, options, tiny_config(), minilm_tokenizer_path())
    first.run()  # one epoch: it is the best one, so `best/` holds the average after it
    assert first.average is not None and first.average.updates == first.step == 2
    saved = load_model(tmp_path / "best")[0].state_dict()
    trained = first.model.state_dict()
    for name, tensor in first.average.average.items():
        torch.testing.assert_close(saved[name], tensor)
    assert any(not torch.equal(trained[name], t) for name, t in first.average.average.items())
    longer = replace(options, epochs=2)
    second = prepare_trainer(two_documents, tmp_path, longer, tiny_config(), minilm_tokenizer_path())
    assert second.resume() == 1 and second.average is not None
    assert second.average.updates == 2
    for name, tensor in first.average.average.items():
        assert torch.equal(second.average.average[name], tensor), name
    second.run(1)
    assert second.average.updates == 4


def test_augmented_training_sees_other_inputs_and_still_fits(two_documents, tmp_path: Path):
    def losses(augmentation: Augmentation, out: Path) -> list[float]:
        options = replace(TINY_OPTIONS, epochs=3, augmentation=augmentation)
        trainer = prepare_trainer(two_documents, out, options, NO_DROPOUT, minilm_tokenizer_path())
        return [h.loss for h in trainer.run()]

    plain = losses(Augmentation(), tmp_path / "plain")
    noisy = losses(Augmentation(token_mask_rate=0.3, box_jitter=20), tmp_path / "noisy")
    assert noisy != plain and noisy[-1] < noisy[0]
    assert noisy == losses(Augmentation(token_mask_rate=0.3, box_jitter=20), tmp_path / "again")  # seeded


def test_bf16_training_steps_track_fp32_and_still_fit(two_documents, tmp_path: Path):
    def run(bf16: bool, out: Path) -> list[float]:
        options = replace(TINY_OPTIONS, epochs=6, bf16=bf16)
        trainer = prepare_trainer(two_documents, out, options, NO_DROPOUT, minilm_tokenizer_path())
        return [h.loss for h in trainer.run()]

    fp32, bf16 = run(False, tmp_path / "fp32"), run(True, tmp_path / "bf16")
    assert bf16 != fp32  # the autocast really changed the arithmetic
    assert bf16[0] == pytest.approx(fp32[0], rel=0.05)  # same start, same data: the losses agree closely
    assert bf16[-1] < bf16[0] / 2


def test_every_parameter_gets_a_gradient_from_a_bf16_step(two_documents, tmp_path: Path):
    options = replace(TINY_OPTIONS, bf16=True)
    trainer = prepare_trainer(two_documents, tmp_path, options, NO_DROPOUT, minilm_tokenizer_path())
    batch = [(page, 0) for page in range(len(trainer.train_pages))]
    loss = train_step(trainer.model, trainer.train_pages, batch, trainer.pad_id, bf16=True)
    assert loss.dtype == torch.float32
    loss.backward()
    missing = [n for n, p in trainer.model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_budget_stops_training(two_documents, tmp_path: Path):
    options = TrainOptions(
        epochs=50, batch_size=2, validation_fraction=0.0, init="random", budget_seconds=0.01
    )
    trainer = prepare_trainer(two_documents, tmp_path, options, tiny_config(), minilm_tokenizer_path())
    assert len(trainer.run()) == 1


def test_windowed_inference_labels_every_word_of_a_long_page(overfit_run):
    trainer, _, _ = overfit_run
    tokenizer = load_tokenizer(minilm_tokenizer_path())
    count = 700
    example = PageExample(
        name="long",
        image_path=None,
        words=[f"word{i % 37}" for i in range(count)],
        boxes=np.array(
            [[i % 900, (i // 10) % 990, i % 900 + 50, (i // 10) % 990 + 10] for i in range(count)]
        ),
        tags=np.zeros(count, dtype=np.int64),
        entity_ids=np.arange(count),
    )
    page = encode_page(
        example, tokenizer, InputOptions(max_tokens=128, overlap_tokens=32), tiny_config().image_size
    )
    assert len(page.windows) > 5
    logits = predict_word_logits(trainer.model, page, trainer.pad_id)
    assert logits.shape == (count, trainer.meta.label_set.num_tags)
    assert np.all(np.isfinite(logits)) and not np.any(np.all(logits == 0, axis=1))


def test_linear_schedule_warms_up_decays_and_can_be_shortened():
    schedule = LinearSchedule(warmup=2, total=10)
    assert [schedule(s) for s in (0, 1)] == [0.5, 1.0]
    assert schedule(6) == pytest.approx(0.5) and schedule(10) == 0.0
    schedule.total = 6
    assert schedule(4) == pytest.approx(0.5) and schedule(6) == 0.0


def test_fine_tuning_from_a_saved_model_takes_its_encoder_and_matching_heads(overfit_run):
    _, _, out = overfit_run
    source, source_meta = load_model(out / "best")
    same = build_model(source_meta, str(out / "best"))
    for name, tensor in source.state_dict().items():
        assert torch.equal(same.state_dict()[name], tensor), name
    other_labels = replace(source_meta, label_set=LabelSet(("date", "total")), relation_schema=None)
    other = build_model(other_labels, str(out / "best"))
    words = other.encoder.embeddings.word_embeddings.weight
    assert torch.equal(words, source.encoder.embeddings.word_embeddings.weight)
    assert other.classifier.weight.shape[0] == 5 and other.relation_head is None
    # transferred weights take the lower learning rate, the fresh head the higher one
    options = replace(TINY_OPTIONS, init=str(out / "best"), lr=1e-5, lr_new=1e-3)
    groups = parameter_groups(other, options, initialised_model(other_labels, options.init)[1])
    rates = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert rates[id(other.classifier.weight)] == 1e-3
    assert rates[id(words)] == 1e-5


def test_a_non_finite_loss_stops_training_before_it_touches_the_weights():
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    loss = model(torch.ones(1, 3)).sum() * float("nan")
    with pytest.raises(FloatingPointError, match="at step 8"):
        apply_step(loss, model, optimizer, scheduler, 1.0, 7)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    apply_step(model(torch.ones(1, 3)).sum(), model, optimizer, scheduler, 1.0, 8)
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_the_split_seed_fixes_the_validation_forms_whatever_the_training_seed(
    tmp_path: Path, synthetic_dataset
):
    documents = read_dataset(synthetic_dataset)

    def held_out(seed: int, split_seed: int | None) -> list[str]:
        options = replace(TINY_OPTIONS, seed=seed, split_seed=split_seed, validation_fraction=0.5)
        trainer = prepare_trainer(
            documents, tmp_path / f"{seed}-{split_seed}", options, NO_DROPOUT, minilm_tokenizer_path()
        )
        return [page.example.name for page in trainer.val_pages]

    assert held_out(1, 9) == held_out(2, 9) == held_out(9, None)
    assert (
        len({tuple(held_out(seed, None)) for seed in range(1, 6)}) > 1
    )  # without it, each seed draws its own
