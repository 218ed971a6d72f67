"""The one batched model call: batching, max_pairs, padding, autocast, devices and input checks."""

from __future__ import annotations

import pytest
import torch

from universeg_plus import create_model, list_models
from universeg_plus.inference import predict_probabilities

ATOL = 1e-5


def _inputs(n: int, s: int, h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, 1, h, w, generator=g)
    si = torch.rand(s, 1, h, w, generator=g)
    sl = (torch.rand(s, 1, h, w, generator=g) > 0.6).float()
    return t, si, sl


class Recorder:
    """The model, remembering the batch of every call."""

    def __init__(self, model):
        self.model, self.batches = model, []

    def __call__(self, t, si, sl):
        assert si.shape[0] == t.shape[0] and sl.shape == si.shape
        self.batches.append(t.shape[0])
        return self.model(t, si, sl)


@pytest.mark.parametrize("name", list_models())
def test_batches_match_one_call_every_variant(name):
    model = create_model(name).eval()
    f = model.config.size_multiple
    t, si, sl = _inputs(5, 3, 2 * f, 2 * f)
    with torch.no_grad():
        want = torch.sigmoid(model(t, si[None].expand(5, -1, -1, -1, -1), sl[None].expand(5, -1, -1, -1, -1)))
    rec = Recorder(model)
    got = predict_probabilities(rec, t, si, sl, batch_size=2)
    assert rec.batches == [2, 2, 1]
    assert got.shape == (5, 1, 2 * f, 2 * f) and got.dtype == torch.float32 and got.device.type == "cpu"
    assert 0 <= got.min() and got.max() <= 1
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_max_pairs_and_padding():
    model = create_model("universeg-tiny").eval()
    t, si, sl = _inputs(7, 3, 32, 32, seed=1)
    ref = predict_probabilities(model, t, si, sl, batch_size=7)
    rec = Recorder(model)
    got = predict_probabilities(rec, t, si, sl, max_pairs=7)  # 7 // 3 = 2 targets per call
    assert rec.batches == [2, 2, 2, 1]
    torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)
    rec = Recorder(model)
    got = predict_probabilities(rec, t, si, sl, batch_size=3, pad_batch=True)  # a fixed-batch (compiled) model
    assert rec.batches == [3, 3, 3] and got.shape[0] == 7
    torch.testing.assert_close(got, ref, atol=ATOL, rtol=0)
    rec = Recorder(model)
    predict_probabilities(rec, t, si, sl, max_pairs=2)  # fewer pairs than S: still one target per call
    assert rec.batches == [1] * 7


def test_autocast_and_device():
    model = create_model("universeg-tiny").eval()
    t, si, sl = _inputs(3, 2, 32, 32, seed=2)
    ref = predict_probabilities(model, t, si, sl, batch_size=3, device="cpu")
    low = predict_probabilities(model, t, si, sl, batch_size=3, autocast=torch.bfloat16)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, ref, atol=0.05, rtol=0)
    assert not torch.equal(low, ref)  # it did run in bf16


def test_keeps_every_output_channel():
    def two_channels(t, si, sl):
        return torch.cat([t, -t], dim=1) * 4

    t, si, sl = _inputs(3, 2, 8, 8)
    got = predict_probabilities(two_channels, t, si, sl, batch_size=2)
    torch.testing.assert_close(got, torch.sigmoid(torch.cat([t, -t], 1) * 4), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(targets=torch.rand(1, 8, 8)), ValueError, r"targets must have shape \(N, C, H, W\), got \(1, 8, 8\)"),
        (dict(targets=torch.rand(2, 1, 8, 4)), ValueError, r"targets are \(8, 4\) but the support set is \(8, 8\)"),
        (dict(support_labels=torch.rand(3, 1, 8, 8)), ValueError, "must have the same shape"),
        (dict(targets=torch.rand(0, 1, 8, 8)), ValueError, "at least one target"),
        (dict(support_images=[1]), TypeError, "support_images must be a torch.Tensor, got list"),
        (dict(batch_size=None), ValueError, "exactly one of batch_size and max_pairs"),
        (dict(max_pairs=4), ValueError, "exactly one of batch_size and max_pairs"),
        (dict(batch_size=0), ValueError, "positive integer, got 0"),
    ],
)
def test_input_errors_name_expected_and_actual(change, error, match):
    args = dict(targets=torch.rand(2, 1, 8, 8), support_images=torch.rand(2, 1, 8, 8),
                support_labels=torch.rand(2, 1, 8, 8), batch_size=2)
    args.update(change)
    with pytest.raises(error, match=match):
        predict_probabilities(lambda t, si, sl: t, **args)
