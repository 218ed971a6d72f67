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
