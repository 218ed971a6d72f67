"""The demo's Annotate tab: label a dataset item after item, the proposal overlaid, clicks to edit.

``universeg-plus annotate IMAGES_OR_VOLUME --session DIR`` serves it (127.0.0.1). The tab shows the
item with the proposed mask, Accept / Skip / Undo, Clear and Reset, a progress bar of the dataset and
a chart of how much each accepted mask had to be edited. A click on the image adds the region of the
probability map around it ("add") or removes the region under it ("remove"). Everything shown comes
from the session (:mod:`.annotate_state`), which writes each answer to disk before the page updates.
Importing this module imports gradio.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..annotate import AnnotationSession
from .annotate_state import AnnotateController
from .ui import CSS, gr

__all__ = ["AnnotateTab", "add_annotate_tab", "build_annotate_app", "launch_annotate"]

log = logging.getLogger(__name__)

_HELP = """\
Correct the proposal, then **Accept** (or **Skip** the item). A click on the image **adds** the region
the model sees around it, or **removes** the region under it (choose below); **Clear** empties the mask
when the proposal is worse than nothing, **Reset** brings the proposal back. Every answer is saved in
the session folder at once: closing the page or the server loses nothing.
"""


def _chart(rows: list[tuple[int, float]]) -> Any:
    import pandas as pd

    return pd.DataFrame({"item": [r[0] for r in rows], "edit cost": [r[1] for r in rows]})


@dataclass
class AnnotateTab:
    """The tab's controller, its output components and the page-load handler that fills them."""

    controller: AnnotateController
    outputs: list[Any]
    load: Callable[[], tuple]


def add_annotate_tab(session: AnnotationSession, refresh_s: float = 2.0) -> AnnotateTab:
    """Add the Annotate tab's components and events to the ``gr.Blocks`` being built."""
    ctl = AnnotateController(session)
    with gr.Tab("Annotate", id="annotate", elem_id="annotate-tab"):
        gr.Markdown(f"### Annotate `{session.folder}`\n" + _HELP)
        progress = gr.HTML(elem_id="annotate-progress")
        with gr.Row():
            with gr.Column(scale=3):
                image = gr.Image(
                    label="Item with the proposed mask (click to edit)", format="png", interactive=False,
                    elem_id="annotate-image", height=420,
                )
            with gr.Column(scale=2):
                status = gr.Markdown(elem_id="annotate-status")
                with gr.Row():
                    mode = gr.Radio(["add", "remove"], value="add", label="A click", elem_id="annotate-mode")
                    label = gr.Number(1, precision=0, minimum=1, label="Label added", elem_id="annotate-label")
                with gr.Row():
                    accept = gr.Button("Accept", variant="primary", elem_id="annotate-accept")
                    skip = gr.Button("Skip", elem_id="annotate-skip")
                    undo = gr.Button("Undo", elem_id="annotate-undo")
                with gr.Row():
                    clear = gr.Button("Clear", elem_id="annotate-clear")
                    reset = gr.Button("Reset to proposal", elem_id="annotate-reset")
                chart = gr.BarPlot(
                    x="item", y="edit cost", title="Edit cost of each accepted mask (1 = drawn)",
                    y_lim=[0, 1], elem_id="annotate-chart", height=200,
                )
                if session.source.is_volume:
                    propagate = gr.Button("Propagate to all slices", elem_id="annotate-propagate")
                    volume_file = gr.File(label="Label volume", interactive=False, elem_id="annotate-volume")
        outputs = [image, status, progress, chart]

        def show(view: tuple) -> tuple:
            overlay, text, bar, rows = view
            return overlay, text, bar, _chart(rows)

        def on_select(mode_value: str, label_value: float, evt: gr.SelectData) -> tuple:
            x, y = evt.index[:2]
            return show(ctl.click(int(x), int(y), positive=mode_value == "add", label=int(label_value or 1)))

        def guarded(action):
            def run(*args: Any) -> tuple:
                try:
                    return show(action())
                except (ValueError, OSError, RuntimeError) as exc:
                    raise gr.Error(str(exc), print_exception=False) from exc

            return run

        image.select(on_select, inputs=[mode, label], outputs=outputs, api_name="annotate_click")
        accept.click(guarded(ctl.accept), outputs=outputs, api_name="annotate_accept")
        skip.click(guarded(ctl.skip), outputs=outputs, api_name="annotate_skip")
        undo.click(guarded(ctl.undo), outputs=outputs, api_name="annotate_undo")
        clear.click(guarded(ctl.clear), outputs=outputs, api_name="annotate_clear")
        reset.click(guarded(ctl.reset), outputs=outputs, api_name="annotate_reset")
        if session.source.is_volume:

            def on_propagate() -> tuple:
                try:
                    path, view = ctl.propagate()
                except (ValueError, OSError, RuntimeError) as exc:
                    raise gr.Error(str(exc), print_exception=False) from exc
                return (path, *show(view))

            propagate.click(on_propagate, outputs=[volume_file, *outputs], api_name="annotate_propagate")
        if session.adapt_steps > 0:

            def on_tick() -> tuple:
                view = ctl.refresh()
                return show(view) if view is not None else tuple(gr.skip() for _ in outputs)

            gr.Timer(refresh_s).tick(on_tick, outputs=outputs, api_visibility="private")
    return AnnotateTab(ctl, outputs, lambda: show(ctl.view()))


def build_annotate_app(session: AnnotationSession, with_segment_tab: bool = False, **demo_kwargs: Any) -> Any:
    """A page with the Annotate tab on ``session`` (and, with ``with_segment_tab``, the few-shot demo
    beside it, built by :func:`universeg_plus.demo.ui.build_demo` with ``demo_kwargs``)."""
    with gr.Blocks(title="UniverSeg+ annotate", analytics_enabled=False) as app:
        with gr.Tabs(selected="annotate"):
            tab = add_annotate_tab(session)
            if with_segment_tab:
                from .ui import build_demo

                with gr.Tab("Segment", id="segment-tab"):
                    build_demo(**demo_kwargs).render()
        app.load(tab.load, outputs=tab.outputs, api_visibility="private")
    return app


def launch_annotate(
    session: AnnotationSession,
    host: str = "127.0.0.1",
    port: int | None = None,
    block: bool = True,
    on_start: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Serve :func:`build_annotate_app` (``kwargs`` go to it); ``block=False`` returns once it listens.

    ``on_start`` is called with the started app before serving (the CLI prints where it listens);
    gradio's own start-up text is silenced, as in :func:`universeg_plus.demo.ui.launch`.
    """
    app = build_annotate_app(session, **kwargs)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, css=CSS)
    if on_start is not None:
        on_start(app)
    if block:
        app.block_thread()
    return app
