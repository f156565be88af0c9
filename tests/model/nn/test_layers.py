import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import tiny_config
from model.nn.layers import (
    MASK_BIAS,
    SelfAttention,
    SpatialBias,
    explicit_attention,
    relative_position_bucket,
)


def lookup(table: torch.nn.Embedding, relative: int, buckets: int, distance: int) -> torch.Tensor:
    return table.weight[relative_position_bucket(torch.tensor(float(relative)), buckets, distance).long()]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.integers(1, 9))
def test_spatial_bias_is_the_sum_of_the_three_bucketed_tables(seed: int, length: int):
    generator = torch.Generator().manual_seed(seed)
    config = tiny_config()
    bias = SpatialBias(config)
    for table in (bias.rel_pos_bias, bias.rel_x_bias, bias.rel_y_bias):
        torch.nn.init.normal_(table.weight, generator=generator)
    position_ids = torch.arange(length)[None].repeat(2, 1) * torch.randint(1, 40, (2, 1), generator=generator)
    # far outside the 0-1000 grid too
    x0y0 = torch.randint(-1500, 2500, (2, length, 2), generator=generator)
    bbox = torch.cat([x0y0, x0y0 + torch.randint(0, 100, (2, length, 2), generator=generator)], dim=-1)
    key_mask = (torch.rand(2, length, generator=generator) > 0.3).long()
    got = bias(position_ids, bbox, key_mask)
    assert got.shape == (2, config.num_heads, length, length)
    for b in range(2):
        for q in range(length):
            for k in range(length):
                if not key_mask[b, k]:
                    assert (got[b, :, q, k] == MASK_BIAS).all()
                    continue
                expected = (
                    lookup(bias.rel_pos_bias, int(position_ids[b, k] - position_ids[b, q]),
                           config.rel_pos_buckets, config.rel_pos_max_distance)
                    + lookup(bias.rel_x_bias, int(bbox[b, k, 0] - bbox[b, q, 0]),
                             config.rel_2d_buckets, config.rel_2d_max_distance)
                    + lookup(bias.rel_y_bias, int(bbox[b, k, 3] - bbox[b, q, 3]),
                             config.rel_2d_buckets, config.rel_2d_max_distance)
                )  # fmt: skip
                torch.testing.assert_close(got[b, :, q, k], expected)


def test_relative_buckets_are_exact_near_zero_and_saturate_far_away():
    relative = torch.tensor([-1000, -3, -1, 0, 1, 3, 1000])
    buckets = relative_position_bucket(relative, 32, 128)
    assert buckets.tolist()[1:6] == [3, 1, 0, 17, 19]
    assert buckets[0] == 15 and buckets[-1] == 31


def reference_bucket(relative: int, num_buckets: int, max_distance: int) -> int:
    """T5's bidirectional bucket in integer Python, the definition the tensor version must match."""
    half = num_buckets // 2
    max_exact = half // 2
    distance = abs(relative)
    if distance < max_exact:
        unsigned = distance
    else:
        scaled = math.log(distance / max_exact) / math.log(max_distance / max_exact)
        unsigned = min(max_exact + int(scaled * (half - max_exact)), half - 1)
    return unsigned + (half if relative > 0 else 0)


def test_relative_buckets_match_the_integer_definition_at_every_distance_the_model_sees():
    relative = torch.arange(-3000, 3001)
    for buckets, distance in ((32, 128), (64, 256), (16, 64)):
        got = relative_position_bucket(relative.float(), buckets, distance)
        expected = [reference_bucket(r, buckets, distance) for r in relative.tolist()]
        assert got.tolist() == expected, (buckets, distance)


def test_fused_and_explicit_attention_agree_and_the_export_context_switches_every_layer():
    """`scaled_dot_product_attention` (torch's path) and the op-by-op spelling (the ONNX export's) compute the
    same attention, padded keys included; `explicit_attention` sets and then restores every layer."""
    config = tiny_config()
    torch.manual_seed(0)
    attention = SelfAttention(config).eval()
    hidden = torch.randn(2, 9, config.hidden_size)
    bias = torch.randn(2, config.num_heads, 9, 9)
    bias[1, :, :, -3:] = MASK_BIAS
    fused = attention(hidden, bias)
    container = torch.nn.Sequential(attention, SelfAttention(config))
    with explicit_attention(container):
        assert all(layer.explicit for layer in container)
        explicit = attention(hidden, bias)
    assert not any(layer.explicit for layer in container)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert not torch.equal(fused[0], fused[1])  # the rows saw different biases
