from safetensors import safe_open

from model.config import minilm_config
from model.features import load_tokenizer
from model.nn.network import LayoutLMv2Encoder
from model.train.minilm import load_minilm_text_stream, minilm_dir, minilm_tokenizer_path, name_mapping


def test_text_stream_equals_the_packaged_minilm():
    encoder = LayoutLMv2Encoder(minilm_config())
    loaded = load_minilm_text_stream(encoder)
    assert len(loaded) == len(name_mapping(6)) == 5 + 6 * 16
    ours = dict(encoder.named_parameters())
    with safe_open(str(minilm_dir() / "model.safetensors"), "pt") as checkpoint:
        for name in (
            "embeddings.word_embeddings.weight",
            "layers.5.output.dense.weight",
            "layers.0.attention.self.query.bias",
        ):
            assert ours[name].equal(checkpoint.get_tensor(name_mapping(6)[name]))


def test_tokenizer_has_truncation_and_padding_off():
    tokenizer = load_tokenizer(minilm_tokenizer_path())
    assert tokenizer.truncation is None and tokenizer.padding is None
    assert len(tokenizer.encode(" ".join(["word"] * 300)).ids) == 302
