"""The weights a fine-tuning starts from: a fresh network with its text stream from MiniLM, random weights,
or what a saved model can pass on (its encoder, and its heads when the labels match)."""

from pathlib import Path

from model.artifact import ArtifactMeta
from model.nn.network import EntityTagger
from model.train.checkpoint import build_network, load_model
from model.train.minilm import load_minilm_text_stream, name_mapping


def initialised_model(meta: ArtifactMeta, init: str) -> tuple[EntityTagger, set[str]]:
    """A fresh network with its text stream from MiniLM, random weights, or a saved model's weights, and the
    names of the parameters that start from trained weights (they take the lower `lr`).

    From a saved model (e.g. one pre-trained on synthetic forms) the encoder is always copied; the entity
    and relation heads too when the label set (and relation schema) are the same, so that fine-tuning
    starts from everything the source learned that still fits. The saved model is read once."""
    model = build_network(meta)
    if init == "random":
        return model, set()
    if init == "minilm":
        load_minilm_text_stream(model.encoder)
        return model, {f"encoder.{name}" for name in name_mapping(meta.config.num_layers)}
    source, source_meta = load_model(Path(init))
    state = transferable_state(source, source_meta, meta)
    model.load_state_dict(state, strict=False)
    return model, set(state)


def build_model(meta: ArtifactMeta, init: str) -> EntityTagger:
    return initialised_model(meta, init)[0]


def transferable_state(source: EntityTagger, source_meta: ArtifactMeta, meta: ArtifactMeta) -> dict:
    """The source weights a model described by `meta` can take: the encoder, plus heads of equal shape
    when the label sets match. Raises when the encoders differ in shape."""
    target = build_network(meta).state_dict()
    same_labels = source_meta.label_set == meta.label_set
    state = {}
    for name, tensor in source.state_dict().items():
        is_encoder = name.startswith("encoder.")
        if is_encoder and (name not in target or target[name].shape != tensor.shape):
            raise ValueError(f"encoder tensor {name} does not fit the configured model")
        if is_encoder or (same_labels and name in target and target[name].shape == tensor.shape):
            state[name] = tensor
    return state
