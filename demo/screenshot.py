"""Retake the README's screenshot of the demo: ``python demo/screenshot.py [--out docs/images/demo.png]``.

Serves the demo on 127.0.0.1, opens it in Debian's headless Chromium (Playwright) at 1400x1000, where
the first bundled example task is already loaded (``--task`` picks another), presses Segment, unfolds
the settings (model, support size, adaptation) and saves the page. Retake it whenever the page or the default model changes. Needs the [demo] extra, playwright
and Debian's chromium or chromium-headless-shell (:mod:`universeg_plus.demo.browser`); no request
leaves the machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from universeg_plus.demo import launch  # noqa: E402
from universeg_plus.demo.browser import find_chromium, launch_chromium  # noqa: E402

log = logging.getLogger("demo.screenshot")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def take_screenshot(
    out: Path, task: str | None, model: str | None, width: int, height: int, chromium: str | Path
) -> Path:
    """Serve the demo, segment ``task`` (default: the one loaded at start) and save the page as PNG at ``out``."""
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    port = _free_port()
    demo = launch(port=port, block=False, default_model=model)
    try:
        with sync_playwright() as p:
            browser = launch_chromium(p, chromium)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
                if task is not None:
                    page.locator("#example-task input").click()
                    page.get_by_role("option", name=task).click()
                    page.locator("#load-example").click()
                expect(page.locator("#reference")).to_contain_text(".png", timeout=30_000)
                page.locator("#segment").click()
                expect(page.locator("#overlay img")).to_be_visible(timeout=300_000)
                expect(page.locator("#summary")).to_contain_text("Predicted pixels")
                page.locator("#settings").get_by_text("Settings").first.click()  # show the folded controls (Adapt)
                expect(page.locator("#adapt")).to_be_visible(timeout=10_000)
                page.mouse.move(0, 0)
                page.wait_for_timeout(500)
                tmp = out.with_suffix(".tmp.png")
                page.screenshot(path=str(tmp), full_page=True)
            finally:
                browser.close()
    finally:
        demo.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(tmp) as img:  # 256 colours: a UI screenshot keeps its look at a fraction of the size
        img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    tmp.unlink()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and take the screenshot; returns the exit code."""
    parser = argparse.ArgumentParser(prog="demo/screenshot.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/demo.png"), help="PNG to write")
    parser.add_argument(
        "--task", default=None, help="bundled example task to segment (default: the one loaded when the page opens)"
    )
    parser.add_argument("--model", default=None, help="model to select (default: the demo's default)")
    parser.add_argument("--width", type=int, default=1400, help="browser width in pixels (default: 1400)")
    parser.add_argument("--height", type=int, default=1000, help="browser height in pixels (default: 1000)")
    parser.add_argument(
        "--chromium", default=None, help="Chromium executable (default: chromium or chromium-headless-shell on PATH)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    chromium = args.chromium or find_chromium()
    if chromium is None or not Path(chromium).exists():
        print(f"error: Chromium not found ({chromium or 'none on PATH'}; apt-get install chromium-headless-shell)",
              file=sys.stderr)
        return 2
    path = take_screenshot(args.out, args.task, args.model, args.width, args.height, chromium)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
