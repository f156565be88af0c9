import numpy as np
import torch
from torch import nn

from model.evaluate import as_tensors, model_device


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
