"""Evaluation scores exactly what a Predictor user gets from the same files, at native resolution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from single_thread import one_thread  # noqa: F401  (autouse: one torch thread)
from task_folders import make_task

from universeg_plus.adapt import in_context_probabilities
from universeg_plus.data.tasks import load_task_root
from universeg_plus.evaluation import EvalSettings, evaluate, make_episodes, native_tasks, to_original_size
from universeg_plus.evaluation.runner import support_set
from universeg_plus.io.inputs import prepare_image
from universeg_plus.metrics import dice
from universeg_plus.predictor import Predictor
from universeg_plus.support import SupportSet

SIZE = (32, 32)
#: Evaluate and the user's Predictor run the same code on the same arrays; only float summation
#: order could differ, so probabilities must agree to this absolute tolerance.
ATOL = 1e-6


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    r = tmp_path_factory.mktemp("tasks")
    make_task(r, "alpha", n=8, size=(40, 48), labels=1, seed=1)  # masks {0, 1}: usable as binary mask files
    make_task(r, "beta", n=6, size=(44, 36), labels=2, binary_tasks={"both": [1, 2]}, seed=2)
    return r


def test_native_tasks_hold_the_files(root) -> None:
    coll = load_task_root(root, SIZE)
    tasks = {t.name: t for t in native_tasks(coll, root)}
    assert set(tasks) == set(coll.names)
    alpha = tasks["alpha/structure_1"]
    assert alpha.resolution == "native" and alpha.images[0].shape == (40, 48) and alpha.masks[0].dtype == bool
    from PIL import Image

    stem = alpha.stems[3]
    np.testing.assert_array_equal(alpha.images[3], np.asarray(Image.open(root / "alpha" / "images" / f"{stem}.png")))
    both = tasks["beta/both"]
    labels = np.asarray(Image.open(root / "beta" / "masks" / f"{both.stems[0]}.png"))
    np.testing.assert_array_equal(both.masks[0], labels > 0)  # the group's indicator, at native size
    with pytest.raises(FileNotFoundError, match="does not exist"):
        native_tasks(coll, root / "elsewhere")


def test_evaluate_equals_the_predictor_on_the_same_files(root, model) -> None:
    """The acceptance test of issue 15: same files -> the same probabilities (ATOL) and the same Dice."""
    coll = load_task_root(root, SIZE, include=["alpha"])
    tasks = native_tasks(coll, root)
    settings = EvalSettings(support_sizes=(2, 4), num_targets=3, ensemble=2, ensemble_max_support=4)
    result = evaluate(model, tasks, settings, progress=False, keep_probabilities=True)
    assert result.resolution == "native"
    task = tasks[0]
    images, masks = root / "alpha" / "images", root / "alpha" / "masks"
    episodes = make_episodes(tasks, (2, 4), 3, 0.5, 2, 4, 0)
    assert len(episodes) == 2
    for ep in episodes:
        # the user's path: file names in, probabilities out at each image's size
        members = []
        for sup in ep.supports:
            support = SupportSet.from_paths(
                [images / f"{task.stems[i]}.png" for i in sup], [masks / f"{task.stems[i]}.png" for i in sup], SIZE
            )
            preds = Predictor(model).set_support(support).predict_many(
                [images / f"{task.stems[t]}.png" for t in ep.targets]
            )
            members.append([p.probabilities for p in preds])
        ours = result.probabilities[(ep.task, ep.support_size, "universeg")]
        for mine, user in zip(ours, members[0]):
            assert mine.shape == (40, 48)
            np.testing.assert_allclose(mine, user, rtol=0, atol=ATOL)
        ens = result.probabilities[(ep.task, ep.support_size, "universeg_ensemble")]
        for k, mine in enumerate(ens):
            np.testing.assert_allclose(mine, np.mean([m[k] for m in members], axis=0), rtol=0, atol=ATOL)
        # and the Dice in the records is the user's mask against the native mask file
        from PIL import Image

        rec = {
            r["target"]: r["dice"]
            for r in result.records
            if r["method"] == "universeg" and r["requested_support"] == ep.requested_support
        }
        for t, user in zip(ep.targets, members[0]):
            ref = np.asarray(Image.open(masks / f"{task.stems[t]}.png")) > 0
            assert rec[t] == pytest.approx(float(dice(user > 0.5, ref)), abs=1e-6)


def test_baseline_upsampling_is_the_predictors(root, model) -> None:
    """The U-Net's model-size output goes to native size by the Predictor's rule (to_original_size)."""
    task = native_tasks(load_task_root(root, SIZE, include=["alpha"]), root)[0]
    support = support_set(task, [0, 1, 2], SIZE)
    targets = [task.images[5], task.images[6]]
    prepared = torch.stack([prepare_image(x, SIZE) for x in targets])
    probs = in_context_probabilities(model, prepared, support.images, support.masks)
    mine = to_original_size(probs, [x.shape for x in targets])
    user = [p.probabilities for p in Predictor(model).set_support(support).predict_many(targets)]
    for a, b in zip(mine, user):
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL)
    with pytest.raises(ValueError, match=r"\(T, 1, h, w\)"):
        to_original_size(probs[:, 0], [(40, 48)] * 2)


def test_every_method_reports_wall_time(root, model, tmp_path) -> None:
    from universeg_plus.adapt import AdaptConfig
    from universeg_plus.evaluation import BaselineConfig, write_report
    from universeg_plus.evaluation.report import read_csv

    tasks = native_tasks(load_task_root(root, SIZE, include=["alpha"]), root)
    settings = EvalSettings(
        support_sizes=(2,),
        num_targets=2,
        ensemble=2,
        baseline=True,
        baseline_config=BaselineConfig(steps=2),
        adapt=AdaptConfig(steps=2, batch_size=1),
        adapt_mix=True,
    )
    result = evaluate(model, tasks, settings, progress=False)
    methods = {"universeg", "universeg_ensemble", "universeg_adapt", "universeg_adapt_mix", "unet"}
    assert {r["method"] for r in result.records} == methods
    spent = {r["method"]: r["wall_s"] for r in result.timings}
    assert set(spent) == methods and all(v > 0 for v in spent.values())
    # the mixed row pays for both of its members
    assert spent["universeg_adapt_mix"] == pytest.approx(spent["universeg_adapt"] + spent["universeg"])
    paths = write_report(result, tmp_path)
    assert {r["method"] for r in read_csv(paths["timings"])} == methods
    md = paths["markdown"].read_text()
    assert "Wall time per task" in md and "UniverSeg + adapt" in md and "evaluation size: native" in md
    meta = json.loads((root / "alpha" / "meta.json").read_text())
    assert meta["labels"]  # the folder is a real task folder, not a bare image dump


def test_stored_tasks_are_evaluated_at_their_size(root, model) -> None:
    coll = load_task_root(root, SIZE, include=["alpha"])
    result = evaluate(model, coll, EvalSettings(support_sizes=(2,), num_targets=2, ensemble=1), progress=False)
    assert result.resolution == "stored 32x32"


def test_adaptation_needs_a_module(root, model) -> None:
    from universeg_plus.adapt import AdaptConfig

    class Wrapped:  # a compiled-model stand-in: callable with a config, not a torch module
        config = model.config

        def __call__(self, *a):
            return model(*a)

    tasks = native_tasks(load_task_root(root, SIZE, include=["alpha"]), root)
    settings = EvalSettings(support_sizes=(2,), num_targets=2, ensemble=1, adapt=AdaptConfig(steps=1))
    with pytest.raises(TypeError, match="torch module"):
        evaluate(Wrapped(), tasks, settings, progress=False)
    with pytest.raises(ValueError, match="adapt_mix needs adapt"):
        EvalSettings(adapt_mix=True)
