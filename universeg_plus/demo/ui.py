"""The gradio page of the few-shot demo: collects uploads and controls, calls :mod:`.logic`, shows results.

Importing this module imports gradio (after switching its telemetry off); without gradio it raises
ImportError naming the extra to install. Nothing here decides anything about segmentation: see
:func:`universeg_plus.demo.logic.run_segmentation`.
"""

from __future__ import annotations

import html
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..colour import COLOUR_MODES
from ..io.optional import require
from ..perturb import WHERE
from .logic import (
    MAX_MASK_LABELS,
    ModelCache,
    SegmentSettings,
    available_backends,
    default_examples_dir,
    default_model_name,
    list_example_tasks,
    perturbation_choices,
    run_segmentation,
    weights_warning,
)
from .startup import ExampleFiles


def _import_gradio() -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return require("gradio", purpose="the demo needs gradio", extra="demo")


gr = _import_gradio()

__all__ = ["CSS", "build_demo", "launch"]

log = logging.getLogger(__name__)

_USE_DEFAULT = object()
#: Errors a user can act on; shown in the page as a message (anything else is a bug).
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError)

_INTRO = """\
# UniverSeg+ few-shot segmentation
Segment a new image from a handful of labelled examples, without training: upload a few **support
images** with their **masks** (or load a bundled example task), upload a **target**, and press
**Segment**. Masks are single-channel label maps: 0 = background, 1, 2, ... (or 0/255); at most
{max_labels} labels. Images and masks are paired in file-name order. A NIfTI or 3D `.npy` target is
segmented on one slice (the middle one unless you pick another).
"""


#: Results are often small images (96 px): shown filling their box, with sharp pixels.
CSS = "#overlay img, #probability img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }"


def _warning_html(model: str) -> str:
    text = weights_warning(model)
    if text is None:
        return ""
    return (
        '<div id="weights-warning-box" role="alert" style="background:#fff3cd;color:#664d03;'
        'border:2px solid #e0a800;border-radius:8px;padding:10px 14px;font-size:1.05em">'
        f"<strong>&#9888; Random weights.</strong> {html.escape(text)}</div>"
    )


def build_demo(
    models: Sequence[str] | None = None,
    default_model: str | None = None,
    examples_dir: str | os.PathLike | None | object = _USE_DEFAULT,
    cache: ModelCache | None = None,
    out_dir: str | os.PathLike | None = None,
    device: str | None = None,
) -> Any:
    """The demo page.

    Args:
        models: Model names offered (default: every registered name).
        default_model: The one selected at start (default: the first with pretrained weights, else
            ``universeg-small``).
        examples_dir: Folder of example tasks (``<task>/{images,masks}``) to prefill from; default the
            repository's ``examples/data``; ``None`` for none. The first task (by name) is loaded
            when the page opens.
        cache: Where networks are kept between clicks (default: a new :class:`ModelCache`).
        out_dir: Folder for the downloadable masks (default: a new temporary folder). Gradio serves
            files only from the temp dir, the working directory and ``allowed_paths``.
        device: Torch device of the networks (default ``"auto"``: CUDA when available, else CPU).

    Returns:
        A ``gr.Blocks``; the Segment event is exposed to ``gradio_client`` as ``api_name="segment"``.

    Raises:
        ValueError: unknown model names.
    """
    cache = cache if cache is not None else ModelCache(models, device=device)
    if models is not None and list(models) != cache.models:
        raise ValueError("pass the model names either as models or through cache, not both")
    names = cache.models
    default = default_model or default_model_name(names)
    if default not in names:
        raise ValueError(f"default model {default!r} is not among the offered models: {', '.join(names)}")
    folder = default_examples_dir() if examples_dir is _USE_DEFAULT else examples_dir
    tasks = list_example_tasks(folder)  # type: ignore[arg-type]
    out_root = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="universeg_plus_demo_"))
    examples = ExampleFiles(tasks, out_root / "examples")
    # the first example task is loaded when the page opens: Segment works at once
    start_images, start_masks, start_target, start_reference = examples.initial()
    backends = available_backends()

    def segment(
        support_images: list[str] | None,
        support_masks: list[str] | None,
        target: str | None,
        reference: str | None,
        model: str,
        backend: str,
        support_size: float | None,
        ensemble: float,
        threshold: float,
        slice_index: float | None,
        axis: int,
        seed: float | None,
        perturbation: str,
        severity: float,
        where: str,
        adapt: bool = False,
        adapt_steps: float | None = 100,
        samples: float | None = 1,
        colour: str = "luma",
        progress: Any = gr.Progress(track_tqdm=True),  # noqa: B008  (gradio's idiom: shows the adaptation bar)
    ) -> tuple[Any, Any, str, list[str], Any]:
        """Segment the target from the support examples; returns overlay, probability, summary, files, uncertainty."""
        try:
            settings = SegmentSettings(
                model=model, backend=backend, support_size=support_size, ensemble=ensemble,
                threshold=threshold, perturbation=perturbation, severity=_whole(severity, "the severity"),
                where=where, slice_index=None if slice_index is None or slice_index < 0 else slice_index,
                axis=_whole(axis, "the axis"),
                seed=_whole(seed or 0, "the seed"),
                adapt_steps=_whole(adapt_steps or 0, "the adaptation steps") if adapt else 0,
                samples=_whole(samples or 1, "the number of samples"), colour=colour or "luma",
            )
            result = run_segmentation(
                support_images, support_masks, target, reference, settings, cache, out_root / "outputs"
            )
        except _USER_ERRORS as exc:
            log.info("segment request rejected: %s", exc)
            raise gr.Error(str(exc), print_exception=False) from exc
        return result.overlay, result.probability, result.summary, [str(p) for p in result.files], result.uncertainty

    def load_example(name: str | None) -> tuple[list[str], list[str], str, str]:
        """Prefill the uploads from a bundled task."""
        if not name:
            raise gr.Error("choose an example task first", print_exception=False)
        try:
            return examples.selection(name)
        except _USER_ERRORS as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    with gr.Blocks(title="UniverSeg+ few-shot segmentation", analytics_enabled=False) as demo:
        gr.Markdown(_INTRO.format(max_labels=MAX_MASK_LABELS))
        warning = gr.HTML(_warning_html(default), elem_id="weights-warning")
        with gr.Row():
            with gr.Column(scale=1):
                if tasks:
                    with gr.Row(equal_height=True):
                        task = gr.Dropdown(
                            list(tasks), value=examples.first, label="Example task", scale=3, elem_id="example-task",
                        )
                        load = gr.Button("Load example", scale=1, elem_id="load-example")
                support_images = gr.File(
                    start_images, label="Support images", file_count="multiple", elem_id="support-images", height=140
                )
                support_masks = gr.File(
                    start_masks, label="Support masks (one per image)", file_count="multiple",
                    elem_id="support-masks", height=140,
                )
                with gr.Row():
                    target = gr.File(start_target, label="Target image or volume", elem_id="target", height=100)
                    reference = gr.File(
                        start_reference, label="Reference mask (optional: Dice)", elem_id="reference", height=100
                    )
                # right under the inputs, so that it stays in view; the settings below start folded
                run = gr.Button("Segment", variant="primary", elem_id="segment")
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    with gr.Row():
                        model = gr.Dropdown(names, value=default, label="Model variant", elem_id="model")
                        backend = gr.Dropdown(
                            backends, value="eager", label="Backend", elem_id="backend",
                            info="tvm compiles the model on first use (minutes on a small CPU)" if len(backends) > 1
                            else None,
                        )
                    with gr.Row():
                        support_size = gr.Number(
                            0, precision=0, minimum=0, label="Support size used (0 = default)", elem_id="support-size"
                        )
                        ensemble = gr.Slider(1, 8, value=1, step=1, label="Ensemble (support subsets)")
                    threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Threshold")
                    with gr.Row():
                        slice_index = gr.Number(
                            -1, precision=0, minimum=-1, label="Volume slice (-1 = middle)", elem_id="slice"
                        )
                        axis = gr.Dropdown([0, 1, 2], value=2, label="Volume axis")
                        seed = gr.Number(0, precision=0, label="Seed")
                    colour = gr.Radio(
                        list(COLOUR_MODES), value="luma", label="Colour (RGB support images)", elem_id="colour",
                        info="how colour becomes the network's one channel: luma (grey as always), fisher (the RGB "
                        "direction that best separates the masks from the background) or auto (the best of luma, "
                        "R, G, B and fisher by leave-one-out Dice on the support set; slower)",
                    )
                with gr.Row():
                    adapt = gr.Checkbox(
                        False, label="Adapt to the support set first", elem_id="adapt",
                        info="fine-tunes a copy of the model on the examples (a progress bar shows the loss)",
                    )
                    adapt_steps = gr.Number(
                        100, precision=0, minimum=1, maximum=2000, label="Adaptation steps", elem_id="adapt-steps"
                    )
                samples = gr.Slider(
                    1, 16, value=1, step=1, label="Samples (uncertainty map; 1 = off)", elem_id="samples",
                    info="K plausible masks from support subsets and augmentations: about K times the time",
                )
                with gr.Accordion("Perturbation (robustness)", open=False):
                    perturbation = gr.Dropdown(perturbation_choices(), value="none", label="Perturbation")
                    severity = gr.Slider(1, 5, value=3, step=1, label="Severity")
                    where = gr.Radio(list(WHERE), value="target", label="Applied to")
            with gr.Column(scale=1):
                overlay = gr.Image(
                    label="Target with predicted mask", format="png", interactive=False, elem_id="overlay", height=300
                )
                probability = gr.Image(
                    label="Foreground probability", format="png", interactive=False, elem_id="probability", height=300
                )
                uncertainty = gr.Image(
                    label="Uncertainty (bright = unsure; cyan: where to look first)", format="png",
                    interactive=False, elem_id="uncertainty", height=300,
                )
                summary = gr.Markdown(label="Summary", elem_id="summary")
                downloads = gr.File(
                    label="Download the mask (PNG label map; NIfTI too for NIfTI targets)",
                    file_count="multiple", interactive=False, elem_id="downloads",
                )
        run.click(
            segment,
            inputs=[
                support_images, support_masks, target, reference, model, backend, support_size, ensemble,
                threshold, slice_index, axis, seed, perturbation, severity, where, adapt, adapt_steps, samples,
                colour,
            ],
            outputs=[overlay, probability, summary, downloads, uncertainty],
            api_name="segment",
        )
        model.change(_warning_html, inputs=model, outputs=warning, api_visibility="private")
        if tasks:
            load.click(
                load_example, inputs=task, outputs=[support_images, support_masks, target, reference],
                api_name="load_example",
            )
    return demo


def _whole(value: Any, what: str) -> int:
    f = float(value)
    if not f.is_integer():
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    return int(f)


def launch(
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
    on_start: Callable[[Any], None] | None = None,
    **kwargs: Any,
) -> Any:
    """Build the demo (``kwargs`` go to :func:`build_demo`) and serve it.

    Args:
        host: Interface to listen on (``0.0.0.0`` exposes it to the network).
        port: Port (default: gradio's, 7860 or the next free one).
        share: Open a public gradio.live tunnel (sends traffic through gradio's servers; off by default).
        block: Serve until interrupted; ``False`` returns right after start (tests).
        on_start: Called with the started ``gr.Blocks`` before serving (the CLI prints where it
            listens). Gradio's own start-up text is silenced: it tells to "set share=True in launch()",
            which a command-line user does with ``--share``.

    Returns:
        The launched ``gr.Blocks`` (its ``local_url`` says where it listens).
    """
    demo = build_demo(**kwargs)
    if share:
        log.warning("--share: the demo is reachable through a public gradio.live link while it runs")
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=True, css=CSS)
    if on_start is not None:
        on_start(demo)
    if block:
        demo.block_thread()
    return demo
