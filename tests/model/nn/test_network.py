import pytest
import torch

from model.config import tiny_config
from model.nn.network import EntityTagger, visual_grid_boxes


def _inputs(batch: int = 2, length: int = 12, seed: int = 0, image_size: int = 64) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randint(0, 800, (batch, length, 1), generator=generator)
    y0 = torch.randint(0, 800, (batch, length, 1), generator=generator)
    size = torch.randint(5, 150, (batch, length, 2), generator=generator)
    return {
        "input_ids": torch.randint(1000, 5000, (batch, length), generator=generator),
        "bbox": torch.cat([x0, y0, x0 + size[..., :1], y0 + size[..., 1:]], dim=-1),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "pixel_values": torch.randn(batch, 3, image_size, image_size, generator=generator),
    }


@pytest.mark.parametrize("visual", [True, False])
def test_every_parameter_gets_a_gradient(visual: bool):
    torch.manual_seed(0)
    model = EntityTagger(tiny_config().with_changes(use_visual=visual), num_tags=7)
    model(**_inputs()).pow(2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    assert model.encoder.spatial_bias is not None
    assert model.encoder.spatial_bias.rel_x_bias.weight.grad.abs().sum() > 0


def test_output_shape_is_text_tokens_by_tags():
    model = EntityTagger(tiny_config(), num_tags=5).eval()
    assert model(**_inputs(batch=3, length=9)).shape == (3, 9, 5)


def test_extra_padding_does_not_change_outputs():
    torch.manual_seed(0)
    model = EntityTagger(tiny_config(), num_tags=7).eval()
    inputs = _inputs(length=10)
    padded = {k: v.clone() for k, v in inputs.items()}
    extra = 6
    padded["input_ids"] = torch.cat([inputs["input_ids"], torch.zeros(2, extra, dtype=torch.long)], 1)
    padded["bbox"] = torch.cat([inputs["bbox"], torch.zeros(2, extra, 4, dtype=torch.long)], 1)
    padded["attention_mask"] = torch.cat(
        [inputs["attention_mask"], torch.zeros(2, extra, dtype=torch.long)], 1
    )
    with torch.no_grad():
        plain, with_padding = model(**inputs), model(**padded)[:, :10]
    torch.testing.assert_close(plain, with_padding, atol=1e-5, rtol=1e-5)


def test_permuting_boxes_changes_the_output():
    torch.manual_seed(0)
    model = EntityTagger(tiny_config(), num_tags=7).eval()
    inputs = _inputs()
    permuted = dict(inputs, bbox=inputs["bbox"][:, torch.randperm(inputs["bbox"].shape[1])])
    with torch.no_grad():
        assert not torch.allclose(model(**inputs), model(**permuted), atol=1e-4)


@pytest.mark.parametrize("carrier", ["layout_embedding", "spatial_bias"])
def test_boxes_reach_the_output_through_each_path(carrier: str):
    """With no visual tokens, boxes reach the output through the layout embedding alone, or (its tables
    zeroed) through the spatial attention bias alone."""
    torch.manual_seed(0)
    config = tiny_config().with_changes(use_visual=False, use_spatial_bias=carrier == "spatial_bias")
    model = EntityTagger(config, num_tags=7).eval()
    inputs = _inputs()
    shifted = dict(inputs, bbox=inputs["bbox"].flip(1))  # relative geometry changes, not just a translation
    with torch.no_grad():
        if carrier == "spatial_bias":
            for table in model.encoder.layout.parameters():
                table.zero_()
        assert not torch.allclose(model(**inputs), model(**shifted), atol=1e-5)


def test_changing_the_image_changes_the_output():
    torch.manual_seed(0)
    model = EntityTagger(tiny_config(), num_tags=7).eval()
    inputs = _inputs()
    with torch.no_grad():
        other = model(**dict(inputs, pixel_values=torch.zeros_like(inputs["pixel_values"])))
        assert not torch.allclose(model(**inputs), other, atol=1e-5)


def test_visual_grid_boxes_tile_the_page():
    boxes = visual_grid_boxes(7)
    assert boxes.shape == (49, 4)
    assert boxes[0].tolist() == [0, 0, 142, 142] and boxes[-1].tolist() == [857, 857, 1000, 1000]
