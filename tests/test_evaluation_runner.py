"""The evaluation runner: which methods and support sizes produce records."""

from __future__ import annotations

import pytest
import torch

from universeg_plus import create_model
from universeg_plus.data.tasks import BinaryTask
from universeg_plus.evaluation import EvalSettings, evaluate
from universeg_plus.evaluation.baseline import BaselineConfig


def _task(n: int = 8, size: int = 32) -> BinaryTask:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks, images = [], []
    for _ in range(n):
        cy, cx = torch.randint(8, size - 8, (2,), generator=g).tolist()
        m = ((yy - cy) ** 2 + (xx - cx) ** 2 < 36).float()
        masks.append(m)
        images.append((0.2 + 0.6 * m + 0.05 * torch.rand(size, size, generator=g)).clamp(0, 1))
    return BinaryTask("disc/disc", "disc", (1,), torch.stack(images)[:, None], torch.stack(masks)[:, None])


def test_baseline_only_for_chosen_support_sizes() -> None:
    settings = EvalSettings(
        support_sizes=(1, 2),
        num_targets=2,
        ensemble=1,
        baseline=True,
        baseline_config=BaselineConfig(steps=2),
        baseline_support_sizes=(2,),
    )
    result = evaluate(create_model("universeg-tiny"), [_task()], settings, progress=False)
    by_method: dict[str, set[int]] = {}
    for r in result.records:
        by_method.setdefault(r["method"], set()).add(r["requested_support"])
    assert by_method == {"universeg": {1, 2}, "unet": {2}}
    assert len(result.records) == 2 * 2 + 2  # universeg at S=1 and 2, unet at S=2; two targets each


def test_baseline_sizes_must_be_evaluated_sizes() -> None:
    with pytest.raises(ValueError, match=r"baseline_support_sizes \[16\] are not in support_sizes"):
        EvalSettings(support_sizes=(1, 4), baseline=True, baseline_support_sizes=(16,))


def test_colour_rows_are_what_a_predictor_user_gets() -> None:
    """RGB task: the colour rows are ``Predictor.set_support(images, masks, colour=...)``'s maps; a grey
    task's colour rows are the plain rows (nothing to project)."""
    import sys
    from pathlib import Path

    import numpy as np

    from universeg_plus.evaluation.native import EvalTask, stored_task
    from universeg_plus.predictor import Predictor

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_colour import make_task  # the synthetic hue task

    images, masks = make_task(6, n=32, seed=0)
    rgb = EvalTask("hue/structure", "hue", images, [m > 0 for m in masks], [f"p{i}" for i in range(6)])
    model = create_model("universeg-tiny").eval()
    settings = EvalSettings(support_sizes=(2,), num_targets=2, ensemble=1, colour=("fisher", "auto", "fisher"))
    assert settings.colour == ("fisher", "auto")
    result = evaluate(model, [rgb, stored_task(_task())], settings, progress=False, keep_probabilities=True)
    methods = {r["method"] for r in result.records}
    assert methods == {"universeg", "universeg_colour_fisher", "universeg_colour_auto"}
    kept = result.probabilities
    grey = {m: kept[("disc/disc", 2, m)] for m in methods}
    for m in ("universeg_colour_fisher", "universeg_colour_auto"):
        assert all(np.array_equal(a, b) for a, b in zip(grey[m], grey["universeg"]))
    fisher, luma = kept[("hue/structure", 2, "universeg_colour_fisher")], kept[("hue/structure", 2, "universeg")]
    assert not all(np.array_equal(a, b) for a, b in zip(fisher, luma))
    from universeg_plus.evaluation.protocol import make_episodes

    ep = make_episodes([rgb], (2,), 2, 0.5, 1, 16, 0)[0]
    want = Predictor(model, calibration=None).set_support(
        [images[i] for i in ep.supports[0]], [masks[i] > 0 for i in ep.supports[0]], colour="fisher"
    ).predict_many([images[t] for t in ep.targets])
    for got, p in zip(fisher, want):
        np.testing.assert_array_equal(got, p.probabilities)
    with pytest.raises(ValueError, match="fisher"):
        EvalSettings(colour=("hsv",))


def test_adapt_tiled_needs_adapt_settings() -> None:
    with pytest.raises(ValueError, match="adapt_tiled needs adapt settings"):
        EvalSettings(adapt_tiled=True)
