"""The torch namespace over the core: imports, unsupported names, devices, mixed precision."""
import sys
import types

import numpy as np
import pytest

import gradviz
from gradviz.training import torch_namespace
from gradviz.training.torch_namespace import UnsupportedAPI, installed


def test_every_import_form_resolves_to_the_core():
    with installed():
        import torch
        import torch.nn.functional as F
        import torch.utils.data
        from torch import nn, optim
        from torch.optim import SGD
        assert torch.tensor is not None and isinstance(torch.tensor([1.0]), gradviz.Tensor)
        assert torch.Tensor is gradviz.Tensor
        assert nn is sys.modules["torch.nn"] and F is sys.modules["torch.nn.functional"]
        assert issubclass(nn.Linear, gradviz.nn.Module) and nn.Module is gradviz.nn.Module
        assert issubclass(SGD, gradviz.optim.SGD) and SGD is optim.SGD
        assert torch.utils.data is sys.modules["torch.utils.data"]
        assert torch.float == gradviz.float32 and torch.long == gradviz.int64 and torch.double == gradviz.float64
        assert repr(torch.float) == "torch.float32" and torch.tensor([1.0]).dtype is torch.float32
        assert torch.nn.functional.mse_loss(torch.tensor([1.0]), torch.tensor([3.0])).item() == 4.0


def test_sys_modules_are_put_back():
    before = {k: v for k, v in sys.modules.items() if k == "torch" or k.startswith("torch.")}
    fake = types.ModuleType("torch")
    sys.modules["torch"] = fake
    try:
        with installed():
            import torch
            assert torch is not fake and isinstance(torch, torch_namespace._Namespace)
        assert sys.modules["torch"] is fake
        assert "torch.nn" not in sys.modules or sys.modules["torch.nn"] is before.get("torch.nn")
    finally:
        sys.modules.pop("torch", None)
        sys.modules.update(before)


def test_real_torch_is_set_aside_and_restored():
    real = pytest.importorskip("torch")
    with installed():
        import torch
        assert torch is not real and torch.cuda.is_available() is False
    import torch
    assert torch is real and sys.modules["torch.nn"] is real.nn


def test_unsupported_names_say_so_in_one_line():
    with installed():
        import torch
        with pytest.raises(UnsupportedAPI) as info:
            torch.nn.Conv2d(1, 1, 3)
        message = str(info.value)
        assert message.startswith("torch.nn.Conv2d is not supported by GradViz's core (supported: ")
        assert "Linear" in message and "MSELoss" in message and "\n" not in message
        assert "relu" not in message.split("supported: ")[1]         # classes list classes
        assert not hasattr(torch, "compile")                          # hasattr still works
        with pytest.raises(ModuleNotFoundError, match="torch.distributed is not supported by GradViz's core"):
            import torch.distributed  # noqa: F401


def test_a_name_the_core_gains_later_is_found(monkeypatch):
    monkeypatch.setattr(gradviz.nn.functional, "fancy_new_loss", lambda a, b: "found", raising=False)
    with installed():
        import torch.nn.functional as F
        assert F.fancy_new_loss(1, 2) == "found"


def test_devices_work_as_on_a_cpu_only_machine():
    methods = {name: gradviz.Tensor.__dict__.get(name) for name in ("to", "cuda", "device", "is_cuda")}
    with installed() as shim:
        import torch
        assert repr(torch.device("cpu")) == "device(type='cpu')" and shim.notes == []
        assert not torch.cuda.is_available() and not torch.backends.mps.is_available()
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        assert str(dev) == "cpu" and shim.notes == []
        x = torch.ones(2, device="cuda")
        assert shim.notes == ["this script asked for cuda: GradViz runs it on its CPU core"]
        assert x.to("cuda") is x and x.cuda() is x and x.cpu() is x
        assert repr(x.device) == "device(type='cpu')" and not x.is_cuda
        assert x.to(torch.device("cuda:0"), torch.float64).dtype == np.float64
        model = torch.nn.Linear(2, 1)
        assert model.to("cuda") is model and model.cuda() is model
        assert repr(torch.device("cuda:0")) == "device(type='cuda', index=0)"
        assert len(shim.notes) == 1                                    # noted once
        with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
            torch.device("gpu")
    assert {name: gradviz.Tensor.__dict__.get(name) for name in methods} == methods    # put back


def test_mixed_precision_for_a_device_type():
    with installed() as shim:
        import torch
        w = torch.ones(2, 2, requires_grad=True)
        with torch.autocast("cpu"):
            assert (w @ w).dtype == gradviz.bfloat16
        with torch.autocast(device_type="cuda"):
            assert (w @ w).dtype == np.float16
        with torch.cuda.amp.autocast():
            assert (w @ w).dtype == np.float16
        with torch.amp.autocast("cuda", enabled=False):
            assert (w @ w).dtype == np.float32
        for scaler in (torch.amp.GradScaler(), torch.amp.GradScaler("cuda"), torch.cuda.amp.GradScaler(),
                       torch.amp.GradScaler("cpu")):
            assert scaler.is_enabled() and scaler.get_scale() == 2.0 ** 16
        assert shim.notes == ["this script asked for cuda: GradViz runs it on its CPU core"]


def test_losses_and_optimizers_keep_their_names_and_types():
    with installed():
        import torch
        loss_fn = torch.nn.MSELoss(reduction="sum")
        assert type(loss_fn).__name__ == "MSELoss" and isinstance(loss_fn, gradviz.nn.MSELoss)
        assert torch.nn.MSELoss is torch.nn.MSELoss                   # one class, however often read
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        assert type(opt).__name__ == "SGD" and repr(opt).startswith("SGD (")
