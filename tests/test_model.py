"""The network: shapes, gradients, official checkpoint layout, the two exact forms, input checks."""

import pytest
import torch
import torch.nn.functional as F

from universeg_plus import UniverSegPlus, create_model, list_models

ATOL = 1e-4  # abs, fp32 logits: the split rewrites only reorder float sums

# The official universeg_v1_nf64_ss64_STA.pt layout, written out from the issue spec, independently of the code.
OFFICIAL_SHAPES = {}
for _i in range(4):
    OFFICIAL_SHAPES[f"enc_blocks.{_i}.cross.cross_conv.weight"] = (64, 3 if _i == 0 else 128, 3, 3)
for _i in range(3):
    OFFICIAL_SHAPES[f"dec_blocks.{_i}.cross.cross_conv.weight"] = (64, 256, 3, 3)
for _kind, _n in (("enc", 4), ("dec", 3)):
    for _i in range(_n):
        OFFICIAL_SHAPES[f"{_kind}_blocks.{_i}.cross.cross_conv.bias"] = (64,)
        for _s in ("target", "support"):
            OFFICIAL_SHAPES[f"{_kind}_blocks.{_i}.{_s}.vmapped.conv.weight"] = (64, 64, 3, 3)
            OFFICIAL_SHAPES[f"{_kind}_blocks.{_i}.{_s}.vmapped.conv.bias"] = (64,)
OFFICIAL_SHAPES["out_conv.conv.weight"] = (1, 64, 1, 1)
OFFICIAL_SHAPES["out_conv.conv.bias"] = (1,)


def _inputs(b, s, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(b, 1, h, w, generator=g)
    si = torch.rand(b, s, 1, h, w, generator=g)
    sl = (torch.rand(b, s, 1, h, w, generator=g) > 0.5).float()
    return t, si, sl


def reference_forward(sd, target, sup_img, sup_lab, n_enc=4, slope=0.01):
    """Official v1 semantics, pair by pair, with torch.nn.functional only."""
    act = lambda x: F.leaky_relu(x, slope)  # noqa: E731
    s_count = sup_img.shape[1]
    t = target  # (B, C, H, W)
    sup = [torch.cat([sup_img[:, i], sup_lab[:, i]], dim=1) for i in range(s_count)]

    def block(prefix, t, sup):
        w, b = sd[f"{prefix}.cross.cross_conv.weight"], sd[f"{prefix}.cross.cross_conv.bias"]
        inter = [F.conv2d(torch.cat([t, s], dim=1), w, b, padding=1) for s in sup]
        t_new = torch.stack(inter, 0).mean(0)
        tw, tb = sd[f"{prefix}.target.vmapped.conv.weight"], sd[f"{prefix}.target.vmapped.conv.bias"]
        sw, sb = sd[f"{prefix}.support.vmapped.conv.weight"], sd[f"{prefix}.support.vmapped.conv.bias"]
        return act(F.conv2d(t_new, tw, tb, padding=1)), [act(F.conv2d(x, sw, sb, padding=1)) for x in inter]

    skips = []
    for i in range(n_enc):
        t, sup = block(f"enc_blocks.{i}", t, sup)
        if i < n_enc - 1:
            skips.append((t, sup))
            t = F.max_pool2d(t, 2)
            sup = [F.max_pool2d(s, 2) for s in sup]
    for i in range(n_enc - 1):
        ts, ss = skips.pop()
        up = lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)  # noqa: E731
        t = torch.cat([up(t), ts], dim=1)
        sup = [torch.cat([up(s), k], dim=1) for s, k in zip(sup, ss)]
        t, sup = block(f"dec_blocks.{i}", t, sup)
    return F.conv2d(t, sd["out_conv.conv.weight"], sd["out_conv.conv.bias"])


def test_official_state_dict_layout_and_count():
    model = create_model("universeg-v1")
    sd = model.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == OFFICIAL_SHAPES
    assert len(sd) == 44
    assert model.num_parameters() == 1_182_785


@pytest.mark.parametrize("mode", ["split", "pairwise"])
def test_official_checkpoint_loads_strictly_and_matches_reference(mode):
    g = torch.Generator().manual_seed(1)
    sd = {k: torch.randn(s, generator=g) * (0.05 if len(s) > 1 else 0.1) for k, s in OFFICIAL_SHAPES.items()}
    model = create_model("universeg-v1", mode=mode)
    missing_unexpected = model.load_state_dict(sd, strict=True)
    assert not missing_unexpected.missing_keys and not missing_unexpected.unexpected_keys
    t, si, sl = _inputs(2, 3, 32, 48)
    with torch.no_grad():
        got = model(t, si, sl)
        want = reference_forward(sd, t, si, sl)
    assert got.shape == (2, 1, 32, 48)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_every_variant(name):
    model = create_model(name)
    f = model.config.size_multiple
    t, si, sl = _inputs(2, 3, 4 * f, 2 * f)
    si.requires_grad_(True)
    out = model(t, si, sl)
    assert out.shape == (2, 1, 4 * f, 2 * f)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    assert si.grad is not None and torch.isfinite(si.grad).all()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", list_models())
def test_split_matches_pairwise_every_variant(name):
    model = create_model(name).eval()
    f = model.config.size_multiple
    t, si, sl = _inputs(2, 5, 4 * f, 4 * f, seed=3)
    with torch.no_grad():
        split = model(t, si, sl)
        model.mode = "pairwise"
        pair = model(t, si, sl)
    torch.testing.assert_close(split, pair, atol=ATOL, rtol=0)


def test_split_matches_pairwise_v1_s64():
    model = create_model("universeg-v1").eval()
    t, si, sl = _inputs(1, 64, 64, 64, seed=5)
    with torch.no_grad():
        split = model(t, si, sl)
        model.mode = "pairwise"
        pair = model(t, si, sl)
    assert (split - pair).abs().max().item() <= ATOL


def test_no_outconv_last_block_emits_logit():
    model = create_model("universeg-v1-no-outconv")
    assert model.out_conv is None
    last = model.dec_blocks[-1].target.vmapped
    assert last.conv.out_channels == 1 and last.act is None


def test_support_order_invariance():
    model = create_model("universeg-tiny").eval()
    t, si, sl = _inputs(1, 4, 32, 32)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        a = model(t, si, sl)
        b = model(t, si[:, perm], sl[:, perm])
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        UniverSegPlus(mode="fast")


@pytest.mark.parametrize(
    "make, exc, words",
    [
        (lambda t, si, sl: (t[0], si, sl), ValueError, ["target_image", "(B, 1, H, W)", "(1, 32, 32)"]),
        (lambda t, si, sl: (t, si[:, :, 0], sl), ValueError, ["support_images", "(B, S, 1, H, W)"]),
        (lambda t, si, sl: (t, si, sl[:, :2]), ValueError, ["support_labels", "(1, 3, 1, 32, 32)", "(1, 2, 1, 32, 32)"]),
        (lambda t, si, sl: (t.repeat(2, 1, 1, 1), si, sl), ValueError, ["(2, 3, 1, 32, 32)", "(1, 3, 1, 32, 32)"]),
        (lambda t, si, sl: (t, si[:, :0], sl[:, :0]), ValueError, ["S = 0"]),
        (lambda t, si, sl: (t[..., :30], si[..., :30], sl[..., :30]), ValueError, ["divisible by 4", "W=30"]),
        (lambda t, si, sl: (t[..., :16], si, sl), ValueError, ["(1, 3, 1, 32, 16)"]),
        (lambda t, si, sl: ((t * 255).to(torch.uint8), si, sl), TypeError, ["target_image", "uint8"]),
        (lambda t, si, sl: (t, si, sl.long()), TypeError, ["support_labels", "int64"]),
        (lambda t, si, sl: (t.numpy(), si, sl), TypeError, ["torch.Tensor", "ndarray"]),
        (lambda t, si, sl: (t, si.double(), sl), TypeError, ["dtype"]),
        (lambda t, si, sl: (t.repeat(1, 2, 1, 1), si, sl), ValueError, ["(1, 2, 32, 32)"]),
    ],
)
def test_bad_inputs_raise_clear_errors(make, exc, words):
    model = create_model("universeg-tiny")
    args = make(*_inputs(1, 3, 32, 32))
    with pytest.raises(exc) as err:
        model(*args)
    for w in words:
        assert w in str(err.value), (w, str(err.value))
