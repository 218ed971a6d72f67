"""Learning curves: evaluate scores every method (adapt + U-Net mix, auto, the U-Net at equal wall time)
on the same support sets, and writes the Dice-vs-S table and plot from those rows."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)
from test_evaluation_runner import _task as _disc_task

from universeg_plus import create_model
from universeg_plus.adapt import AdaptConfig
from universeg_plus.data.tasks import BinaryTask
from universeg_plus.evaluation import EvalSettings, evaluate, summarize
from universeg_plus.evaluation.curves import curve_points, curves_markdown, write_curves
from universeg_plus.supervised import BaselineConfig


def _task(name: str) -> BinaryTask:
    """The runner tests' disc task under another name (two tasks for the means over tasks)."""
    return dataclasses.replace(_disc_task(7), name=f"{name}/disc", dataset=name)


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    settings = EvalSettings(
        support_sizes=(1, 2), num_targets=2, ensemble=1, baseline=True,
        baseline_config=BaselineConfig(steps=4, width=4, depth=3), adapt=AdaptConfig(steps=2, crop=None),
        adapt_unet=True, auto=True, auto_folds=2, unet_equal_time=True,
    )
    return evaluate(create_model("universeg-tiny"), [_task("a"), _task("b")], settings, progress=False)


def test_every_method_at_every_support_size(result) -> None:
    seen: dict[str, set[int]] = {}
    for r in result.records:
        seen.setdefault(r["method"], set()).add(r["requested_support"])
    expected = {"universeg", "universeg_adapt", "unet", "adapt_unet", "auto", "unet_equal_time"}
    assert set(seen) == expected and all(v == {1, 2} for v in seen.values())
    walls = {(t["task"], t["requested_support"], t["method"]): t["wall_s"] for t in result.timings}
    for (task, s, m), w in walls.items():
        assert w > 0, (task, s, m)
        if m == "adapt_unet":
            assert w == pytest.approx(walls[(task, s, "universeg_adapt")] + walls[(task, s, "unet")])


def test_adapt_unet_rows_average_the_two_maps(result) -> None:
    # re-derive one Dice: the mean map of adapt and U-Net thresholded at 0.5
    settings = EvalSettings(
        support_sizes=(2,), num_targets=2, ensemble=1, baseline=True,
        baseline_config=BaselineConfig(steps=4, width=4, depth=3), adapt=AdaptConfig(steps=2, crop=None),
        adapt_unet=True,
    )
    r = evaluate(create_model("universeg-tiny"), [_task("a")], settings, progress=False, keep_probabilities=True)
    p = r.probabilities
    key = next(k for k in p if k[2] == "adapt_unet")
    for mix, a, u in zip(p[key], p[(key[0], key[1], "universeg_adapt")], p[(key[0], key[1], "unet")]):
        assert abs(mix - (a + u) / 2).max() < 1e-6


def test_curves_are_the_summary_means_and_are_written(result, tmp_path) -> None:
    summary = summarize(result.records)
    pts = curve_points(summary, result.timings)
    for m, by_s in pts.items():
        for s, p in by_s.items():
            rows = [float(r["dice_mean"]) for r in summary if r["method"] == m and r["requested_support"] == s]
            assert p["dice"] == pytest.approx(sum(rows) / len(rows)) and p["tasks"] == 2
            assert math.isfinite(p["wall_s"]) and p["wall_s"] > 0
    md = curves_markdown(summary, result.timings)
    assert "| auto (leave-one-out choice) |" in md and "against U-Net, equal wall time" in md
    paths = write_curves(summary, result.timings, tmp_path, "test")
    assert paths["curves_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "S=2" in paths["curves_markdown"].read_text()


def test_option_dependencies() -> None:
    with pytest.raises(ValueError, match="unet_equal_time needs baseline"):
        EvalSettings(unet_equal_time=True)
    with pytest.raises(ValueError, match="adapt_unet needs"):
        EvalSettings(adapt_unet=True, baseline=True)
