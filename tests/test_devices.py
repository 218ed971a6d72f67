"""One device rule for every entry point: ``auto`` = CUDA when available, else CPU (issue 24)."""

from __future__ import annotations

import pytest
import torch

from universeg_plus.cli import build_parser
from universeg_plus.devices import check_device_name, resolve_device

AUTO = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def test_auto_is_cuda_when_available():
    assert resolve_device() == resolve_device("auto") == resolve_device(" AUTO ") == AUTO
    assert resolve_device(None) is None  # the caller's default (e.g. the device a model object is on)
    assert resolve_device("cpu") == torch.device("cpu")


def test_missing_or_bad_devices_are_refused():
    with pytest.raises(ValueError, match="'auto' or a torch device"):
        resolve_device("gpu-please")
    with pytest.raises(ValueError, match="'auto' or a torch device"):
        check_device_name("gpu-please")
    # a name for another machine (a Ray worker) is checked as a name only, whatever this machine has
    assert [check_device_name(d) for d in (" Auto", "cpu", "cuda", "cuda:3", torch.device("cuda", 1))] == [
        "auto", "cpu", "cuda", "cuda:3", "cuda:1"]
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available here.*'cpu' or 'auto'"):
            resolve_device("cuda")


def test_every_command_defaults_to_auto():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("example", "segment", "segment-dataset", "demo", "evaluate", "annotate"):
        device = next(a for a in commands[name]._actions if a.dest == "device")
        assert device.default == "auto" and "CUDA when available" in device.help, name


def test_predictor_and_configs_follow_the_rule():
    from universeg_plus import Predictor
    from universeg_plus.ablation.config import EvaluateSection
    from universeg_plus.robustness.config import GridSettings

    assert Predictor("universeg-tiny", pretrained=False).device == AUTO
    assert EvaluateSection().device == "auto" and GridSettings().device == "auto"



def test_tvm_backend_by_name_stays_on_the_host_cpu(monkeypatch):
    """TVM's default target is the host CPU: a name compiled for it is not first moved to CUDA."""
    from universeg_plus import backends, predictor

    seen = {}

    def fake_compile(model, backend="tvm", **kwargs):
        seen["device"] = next(model.parameters()).device
        return model

    monkeypatch.setattr(backends, "compile", fake_compile)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # "auto" would pick CUDA here
    assert resolve_device("auto") == torch.device("cuda")
    p = predictor.Predictor("universeg-tiny", pretrained=False, backend="tvm")
    assert seen["device"] == torch.device("cpu") and p.device == torch.device("cpu")
