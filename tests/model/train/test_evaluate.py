import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from model.train.evaluate import PixelCache, as_tensors, image_pixels, model_device


def test_as_tensors_share_cpu_memory_and_move_to_another_device():
    arrays = {"input_ids": np.arange(6, dtype=np.int64).reshape(2, 3), "pixels": np.zeros((2, 4), np.float32)}
    on_cpu = as_tensors(arrays)
    arrays["input_ids"][0, 0] = 41
    assert on_cpu["input_ids"][0, 0].item() == 41  # no copy on the CPU
    moved = as_tensors(arrays, torch.device("meta"))  # stands in for a GPU: a device that is not the CPU's
    assert {t.device.type for t in moved.values()} == {"meta"}
    assert [(t.shape, t.dtype) for t in moved.values()] == [(t.shape, t.dtype) for t in on_cpu.values()]


def test_model_device_is_where_the_parameters_are():
    model = nn.Linear(2, 2)
    assert model_device(model) == torch.device("cpu")
    assert model_device(model.to("meta")).type == "meta"


def test_pages_that_share_an_image_share_one_read_only_pixel_array(tmp_path: Path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    Image.new("L", (80, 100), 0).save(first)
    Image.new("L", (80, 100), 255).save(second)
    linked = tmp_path / "a-linked.png"
    os.link(first, linked)
    cache: PixelCache = {}
    pixels = image_pixels(first, 32, cache)
    assert image_pixels(first, 32, cache) is pixels and not pixels.flags.writeable
    assert image_pixels(linked, 32, cache) is pixels  # a hard link is the same file
    other = image_pixels(second, 32, cache)
    assert other.shape == pixels.shape == (3, 32, 32) and other.min() > pixels.max()
    assert np.array_equal(image_pixels(first, 32), pixels)  # without a cache: the same values, a new array
    with pytest.raises(ValueError):
        pixels[0, 0, 0] = 1.0
