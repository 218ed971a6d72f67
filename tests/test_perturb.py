"""Perturbations: determinism, shapes/dtypes, reference outputs, monotone severity, where-isolation, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from universeg_plus.metrics import dice
from universeg_plus.perturb import (
    PERTURBATIONS,
    WHERE,
    Compose,
    Contrast,
    GaussianBlur,
    GaussianNoise,
    Ghosting,
    IntensityShift,
    LabelNoise,
    Motion,
    ResolutionLoss,
    apply_perturbation,
    get_perturbation,
    list_perturbations,
    severity_table,
)

IMAGE_NAMES = list_perturbations("image")


def _images(n: int = 6, size: int = 48, seed: int = 0) -> torch.Tensor:
    """Smooth structured images in [0.1, 0.9]: a few Gaussian blobs on a gradient, (n, 1, size, size)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        img = 0.3 * xx.clone()
        for _ in range(3):
            cy, cx, r = torch.rand(3, generator=g) * torch.tensor([0.6, 0.6, 0.1]) + torch.tensor([0.2, 0.2, 0.08])
            img += 0.5 * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
        out.append(img)
    x = torch.stack(out)[:, None]
    return 0.1 + 0.8 * (x - x.amin()) / (x.amax() - x.amin())


def _masks(n: int = 6, size: int = 48) -> torch.Tensor:
    m = torch.zeros(n, 1, size, size)
    for i in range(n):
        m[i, 0, 10 + i : 30 + i, 12:34] = 1
    return m


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / (a.double() - b.double()).pow(2).mean().clamp_min(1e-20)))


def test_registry_names_and_table():
    assert set(PERTURBATIONS) == {
        "gaussian_noise", "rician_noise", "motion", "ghosting", "contrast", "gaussian_blur",
        "bias_field", "resolution_loss", "intensity_shift", "label_noise",
    }
    assert list_perturbations("mask") == ["label_noise"]
    table = severity_table()
    assert len(table) == 10 and all(len(r["severities"]) == 5 for r in table)
    with pytest.raises(ValueError, match="valid names"):
        get_perturbation("snow", 1)


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_severity_parameters_are_monotone(name):
    """Every documented parameter is non-decreasing from severity 1 to 5, and something grows."""
    sev = PERTURBATIONS[name].SEVERITY
    for key in sev[0]:
        values = [s[key] for s in sev]
        assert values == sorted(values), (name, key, values)
    assert any(sev[0][k] < sev[-1][k] for k in sev[0])


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_seeded_determinism(name):
    t_kind = PERTURBATIONS[name].kind
    x = _masks() if t_kind == "mask" else _images()
    a = get_perturbation(name, 4, seed=7)(x)
    b = get_perturbation(name, 4).set_seed(7)(x)
    assert torch.equal(a, b)
    t = get_perturbation(name, 4, seed=7)
    params = t.draw(x)
    assert torch.equal(t.apply(x, params), a)  # draw + apply == __call__ from the same seed
    assert torch.equal(t.apply(x, params), t.apply(x, params))  # apply is deterministic


@pytest.mark.parametrize("name", list(PERTURBATIONS))
@pytest.mark.parametrize("shape,dtype", [((2, 1, 24, 20), torch.float32), ((2, 3, 1, 24, 20), torch.float64),
                                         ((3, 16, 16), torch.bfloat16)])
def test_shape_and_dtype_preserved(name, shape, dtype):
    t = get_perturbation(name, 5)
    if t.kind == "mask":
        x = torch.zeros(shape, dtype=dtype)
        x[..., 4:12, 4:12] = 1
    else:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    y = t(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    if t.kind == "mask":
        assert bool(((y == 0) | (y == 1)).all())
    else:
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("name", IMAGE_NAMES)
def test_psnr_falls_with_severity(name):
    x = _images(8)
    psnr = [_psnr(get_perturbation(name, s, seed=3)(x), x) for s in range(1, 6)]
    assert all(a > b for a, b in zip(psnr, psnr[1:])), (name, psnr)


def test_label_noise_dice_falls_with_severity():
    m = _masks(16)
    d = [float(dice(get_perturbation("label_noise", s, seed=3)(m)[:, 0], m[:, 0]).mean()) for s in range(1, 6)]
    assert all(a > b for a, b in zip(d, d[1:])), d
    assert d[0] < 1.0


def test_probability_zero_is_identity_and_half_mixes():
    x = _images(32)
    assert torch.equal(GaussianNoise(0.1, p=0.0)(x), x)
    y = GaussianNoise(0.1, p=0.5, seed=0)(x)
    changed = (y != x).flatten(1).any(dim=1)
    assert 0 < int(changed.sum()) < 32


# ---------------------------------------------------------------- reference outputs
def test_gaussian_noise_matches_reference():
    x = _images(2)
    g = torch.Generator().manual_seed(5)
    on = torch.rand(2, generator=g) < 1.0
    ref = (x + 0.07 * torch.randn(2, 1, 48, 48, generator=g)).clamp(0, 1)
    assert bool(on.all())
    torch.testing.assert_close(GaussianNoise(0.07, seed=5)(x), ref, atol=1e-6, rtol=0)


def test_motion_whole_image_shift_is_a_translation():
    """All lines shifted by the same integer (dy, dx) = a circular translation of the image."""
    x = _images(2)
    t = Motion(fraction=1.0, max_shift=0.1)
    n, h = 2, x.shape[-2]
    params = {"on": torch.ones(n, dtype=torch.bool), "lines": torch.ones(n, h, dtype=torch.bool),
              "shift": torch.tensor([2.0, -3.0]).expand(n, h, 2).clone()}
    torch.testing.assert_close(t.apply(x, params), torch.roll(x, (2, -3), dims=(-2, -1)), atol=1e-5, rtol=0)
    assert torch.allclose(Motion(fraction=0.0)(x), x, atol=1e-5)


def test_ghosting_reference_and_identity():
    x = _images(1)
    t = Ghosting(intensity=0.5)
    params = {"on": torch.ones(1, dtype=torch.bool), "rows": torch.ones(1, dtype=torch.bool),
              "period": torch.tensor([4])}
    k = torch.fft.fft2(x.double())
    rows = torch.arange(48)
    k[..., (rows % 4 == 0) & (rows != 0), :] *= 0.5
    torch.testing.assert_close(t.apply(x, params), torch.fft.ifft2(k).abs().float().clamp(0, 1), atol=1e-5, rtol=0)
    assert torch.allclose(Ghosting(intensity=0.0)(x), x, atol=1e-5)


def test_contrast_intensity_resolution_blur_references():
    x = _images(4)
    t = Contrast(gamma=2.0, clip=0.1, seed=0)
    params = t.draw(x)
    gamma = torch.where(params["sign"] > 0, 2.0, 0.5).view(-1, 1, 1, 1)
    torch.testing.assert_close(t.apply(x, params), ((x**gamma - 0.1) / 0.8).clamp(0, 1), atol=1e-5, rtol=0)
    s = IntensityShift(0.2, seed=1)
    p = s.draw(x)
    torch.testing.assert_close(s.apply(x, p), (x + 0.2 * p["sign"].view(-1, 1, 1, 1)).clamp(0, 1))
    low = F.interpolate(x, size=(24, 24), mode="bilinear", antialias=True, align_corners=False)
    ref = F.interpolate(low, size=(48, 48), mode="bilinear", align_corners=False)
    torch.testing.assert_close(ResolutionLoss(2.0)(x), ref, atol=1e-6, rtol=0)
    assert torch.equal(ResolutionLoss(1.0)(x), x)
    blurred = GaussianBlur(1.0)(x)
    assert math.isclose(float(blurred.mean()), float(x.mean()), abs_tol=2e-3)  # blur preserves the mean
    assert float(blurred.diff(dim=-1).abs().mean()) < float(x.diff(dim=-1).abs().mean())


def test_label_noise_reference():
    m = _masks(2)
    t = LabelNoise(iterations=1, drop=0.0)
    params = {"on": torch.ones(2, dtype=torch.bool), "dilate": torch.tensor([1, 0]), "erode": torch.tensor([0, 1]),
              "drop": torch.tensor([False, False])}
    out = t.apply(m, params)
    assert torch.equal(out[0], F.max_pool2d(m[:1], 3, 1, 1)[0])
    assert torch.equal(out[1], -F.max_pool2d(-m[1:], 3, 1, 1)[0])
    params["drop"] = torch.tensor([True, False])
    assert float(t.apply(m, params)[0].sum()) == 0.0


# ---------------------------------------------------------------- compose and where
def test_compose_is_seeded_and_splits_by_kind():
    x = _images(3)
    c1 = Compose([get_perturbation("motion", 2), get_perturbation("gaussian_noise", 2)], seed=11)
    c2 = Compose([get_perturbation("motion", 2), get_perturbation("gaussian_noise", 2)]).set_seed(11)
    assert torch.equal(c1(x), c2(x))
    c3 = Compose([get_perturbation("motion", 2), get_perturbation("gaussian_noise", 2)], seed=11)
    params = c3.draw(x)
    assert torch.equal(c3.apply(x, params), c2.set_seed(11)(x))
    mixed = Compose([GaussianNoise(0.1), LabelNoise(2)])
    assert mixed.kinds == {"image", "mask"}
    assert mixed.only("mask").transforms[0] is mixed.transforms[1]
    with pytest.raises(ValueError):
        Compose([])


def _episode():
    t = _images(2, 32)
    si = _images(6, 32, seed=1).reshape(2, 3, 1, 32, 32)
    sm = _masks(6, 32).reshape(2, 3, 1, 32, 32)
    return t, si, sm


@pytest.mark.parametrize("where", list(WHERE))
def test_where_isolation(where):
    t, si, sm = _episode()
    t0, si0, sm0 = t.clone(), si.clone(), sm.clone()
    pert = Compose([get_perturbation("gaussian_noise", 3), get_perturbation("label_noise", 3)], seed=0)
    ot, osi, osm = apply_perturbation(t, si, sm, pert, where=where)
    changed = {"target": not torch.equal(ot, t0), "support_images": not torch.equal(osi, si0),
               "support_masks": not torch.equal(osm, sm0)}
    selected = set(WHERE[where])
    assert {k for k, v in changed.items() if v} == selected
    assert torch.equal(t, t0) and torch.equal(si, si0) and torch.equal(sm, sm0)  # inputs not modified in place


def test_where_support_leaves_target_and_vice_versa():
    t, si, sm = _episode()
    noise = get_perturbation("rician_noise", 5, seed=2)
    ot, osi, osm = apply_perturbation(t, si, sm, noise, where="support_images")
    assert ot is t and osm is sm and not torch.equal(osi, si)
    ot, osi, osm = apply_perturbation(t, si, sm, noise, where="target")
    assert osi is si and osm is sm and not torch.equal(ot, t)


def test_invalid_arguments_raise_value_error():
    t, si, sm = _episode()
    for bad in (0, 6, 2.5, True, "3"):
        with pytest.raises(ValueError, match="severity"):
            get_perturbation("motion", bad)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="probability"):
            GaussianNoise(0.1, p=bad)
    with pytest.raises(ValueError, match="where"):
        apply_perturbation(t, si, sm, GaussianNoise(0.1), where="everywhere")
    with pytest.raises(ValueError, match="label noise"):
        apply_perturbation(t, si, sm, LabelNoise(1), where="target")
    with pytest.raises(ValueError, match="support masks"):
        apply_perturbation(t, si, sm, GaussianNoise(0.1), where="support_masks")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        GaussianNoise(0.1)(t * 2)
    with pytest.raises(ValueError, match="binary"):
        LabelNoise(1)(t)
    with pytest.raises(TypeError, match="floating-point"):
        GaussianNoise(0.1)(torch.zeros(2, 8, 8, dtype=torch.uint8))
    for kwargs in ({"std": -1.0},):
        with pytest.raises(ValueError, match="std"):
            GaussianNoise(**kwargs)
    with pytest.raises(ValueError, match="gamma"):
        Contrast(gamma=0.5)
    with pytest.raises(ValueError, match="factor"):
        ResolutionLoss(0.5)
    with pytest.raises(ValueError, match="drop"):
        LabelNoise(1, drop=2.0)
    with pytest.raises(ValueError, match="params"):
        GaussianNoise(0.1).apply(t, GaussianNoise(0.1).draw(si))
