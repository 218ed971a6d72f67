"""The demo's Annotate tab: its controller, and the served page in headless Chromium across a restart."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from browser_helpers import chromium_or_skip

from universeg_plus import create_model
from universeg_plus.annotate import AnnotationSession
from universeg_plus.demo.annotate_state import AnnotateController
from universeg_plus.demo.browser import launch_chromium

ROOT = Path(__file__).resolve().parents[1]
NUCLEI = ROOT / "examples" / "data" / "dsb2018_nuclei_crops"


@pytest.fixture()
def five(tmp_path) -> Path:
    """Five bundled images in a folder of their own."""
    folder = tmp_path / "five"
    folder.mkdir()
    for p in sorted((NUCLEI / "images").glob("*.png"))[:5]:
        shutil.copy(p, folder / p.name)
    return folder


def test_controller_clicks_accept_undo_and_shows_the_session(five, tmp_path):
    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    with AnnotationSession(five, tmp_path / "s", model) as s:
        ctl = AnnotateController(s)
        overlay, status, bar, chart = ctl.view()
        assert overlay.shape == (96, 112, 3) and "crop_r020_c030" in status and "0 of 5 answered" in bar
        assert "not edited" in status and chart == []
        overlay, status, _, _ = ctl.click(x=40, y=30, positive=True)  # nothing proposed there: a small disc
        assert ctl.working[30, 40] == 1 and "not edited" not in status
        painted = ctl.working.copy()
        _, status, bar, chart = ctl.accept()
        assert "1 of 5 answered" in bar and chart == [(1, 1.0)] and "crop_r020_c190" in status
        np.testing.assert_array_equal(s.mask(0), painted)
        ctl.clear()
        assert not ctl.working.any()
        _, status, bar, chart = ctl.undo()
        assert "0 of 5 answered" in bar and "reopened crop_r020_c030" in status and ctl.index == 0


def test_controller_names_the_colour_projection_of_the_proposal(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_colour import make_task  # the synthetic hue task (RGB)
    from PIL import Image

    images, masks = make_task(3, n=40, seed=13)
    (tmp_path / "photos").mkdir()
    for k, im in enumerate(images):
        Image.fromarray(im).save(tmp_path / "photos" / f"photo{k}.png")
    torch.manual_seed(0)
    with AnnotationSession(tmp_path / "photos", tmp_path / "s", create_model("universeg-tiny").eval(),
                           colour="fisher") as s:
        assert "colour: luma" in AnnotateController(s).view()[1]  # nothing accepted: nothing fitted yet
        s.accept(masks[0], 0)
        overlay, status, _, _ = AnnotateController(s).view()
        assert "colour: fisher" in status and overlay.shape == (40, 40, 3)


# ---------------------------------------------------------------------- the page, served by the CLI
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(images: Path, session: Path):
    """``universeg-plus annotate`` in a fresh process; yields its URL, stops it (SIGTERM) afterwards."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "universeg_plus", "annotate", str(images), "--session", str(session),
         "--model", "universeg-tiny", "--random-weights", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the annotate server exited: {proc.stderr.read()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2):
                    break
            if time.monotonic() > deadline:
                raise AssertionError("the annotate server did not answer within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_browser_accept_two_edit_one_restart_and_find_the_session_where_it_was(five, tmp_path):
    chromium = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    session = tmp_path / "session"
    outside: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p, chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
                    else outside.append(r.url))
            progress, status = page.locator("#annotate-progress"), page.locator("#annotate-status")
            with _server(five, session) as url:
                page.goto(url, wait_until="networkidle")
                expect(progress).to_contain_text("0 of 5 answered", timeout=30_000)
                expect(status).to_contain_text("crop_r020_c030")
                page.locator("#annotate-accept").click()
                expect(progress).to_contain_text("1 of 5 answered", timeout=30_000)
                page.locator("#annotate-accept").click()
                expect(progress).to_contain_text("2 of 5 answered", timeout=30_000)
                expect(status).to_contain_text("crop_r020_c350")
                expect(status).to_contain_text("not edited")
                image = page.locator("#annotate-image img")
                box = image.bounding_box()  # away from the label floating over the top-left corner
                image.click(position={"x": box["width"] / 2, "y": box["height"] * 0.6})  # add a region
                expect(status).not_to_contain_text("not edited", timeout=30_000)
                page.locator("#annotate-accept").click()
                expect(progress).to_contain_text("3 of 5 answered (3 accepted, 0 skipped)", timeout=30_000)
                expect(page.locator("#annotate-chart")).to_be_visible()
            state = json.loads((session / "session.json").read_text())
            assert [(it["state"], it["edited"]) for it in state["items"]] == [
                ("accepted", False), ("accepted", False), ("accepted", True), ("pending", None), ("pending", None)]
            assert state["items"][2]["edit_pixels"] > 0

            with _server(five, session) as url:  # a new server on the same session folder
                page.goto(url, wait_until="networkidle")
                expect(progress).to_contain_text("3 of 5 answered (3 accepted, 0 skipped)", timeout=30_000)
                expect(status).to_contain_text("crop_r200_c030")  # the fourth image, where the work stopped
        finally:
            browser.close()
    assert not outside, f"the page requested outside addresses: {outside[:5]}"


def test_an_untouched_proposal_is_replaced_by_the_adapted_one_when_ready(five, tmp_path, monkeypatch):
    import threading

    from universeg_plus.annotate import proposals

    go = threading.Event()
    real_adapt = proposals.Predictor.adapt

    def held_adapt(self, *args, **kwargs):  # adaptation waits for the test's go
        go.wait(60)
        return real_adapt(self, *args, **kwargs)

    monkeypatch.setattr(proposals.Predictor, "adapt", held_adapt)
    torch.manual_seed(0)
    model = create_model("universeg-tiny").eval()
    with AnnotationSession(five, tmp_path / "s", model, adapt_steps=1, background=True) as s:
        ctl = AnnotateController(s)
        ctl.click(x=50, y=40, positive=True)
        ctl.accept()
        assert ctl.proposal.source == "in-context" and ctl.refresh() is None  # not ready yet
        go.set()
        assert s.proposer.wait_refined(timeout=60)
        _, status, _, _ = ctl.refresh()
        assert ctl.proposal.source == "adapted" and "proposal: adapted" in status
        ctl.click(x=10, y=10, positive=True)
        ctl.accept()  # the next item: once edited, a refresh must not overwrite the edits
        ctl.click(x=10, y=10, positive=True)
        edited = ctl.working.copy()
        assert s.proposer.wait_refined(timeout=60)
        assert ctl.refresh() is None
        np.testing.assert_array_equal(ctl.working, edited)
