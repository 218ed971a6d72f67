"""``segment_dataset``: segment a folder, glob or manifest of images/volumes on Ray Data, resumably.

The driver (this process) lists the work, loads the model and the support set once, checks every
option, and puts model and support set in Ray's object store. A colour projection (``colour=``) is
fitted here, once, on the support images; the support set carries it to the workers
(:attr:`~universeg_plus.support.SupportSet.colour`), so every target on every worker is projected
alike. Ray Data then streams the rows through an actor pool (``map_batches`` with
:class:`~universeg_plus.cluster.worker.SegmentWorker`): one Predictor per actor, ``num_workers``
actors with ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs each. Ray restarts a worker that
dies (Ray Data's default ``max_restarts=-1``) and retries its task (``max_task_retries=max_retries``);
a row whose task fails every retry is a ``failed`` row of the report, the run goes on. Outputs are
written atomically by :meth:`Predictor.predict_file`, so a retried task writes the same bytes again,
a reader never sees half a file, and ``skip_existing`` can trust any output it finds.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..devices import AUTO, check_device_name
from ..io.atomic import clean_stale_partials
from ..io.inputs import MAX_LABELS, as_count
from .jobs import Job, check_unique_outputs, list_jobs
from .report import read_report, rerun_jobs, write_report

if TYPE_CHECKING:
    from ..colour import ColourProjection

__all__ = ["REPORT_NAME", "DatasetInterrupted", "DatasetRun", "segment_dataset"]

log = logging.getLogger(__name__)

#: The report's file name in the output folder, unless another path is given.
REPORT_NAME = "segment-dataset-report.csv"


@dataclass
class DatasetRun:
    """What a dataset run did.

    Attributes:
        rows: One report row per input (see :mod:`universeg_plus.cluster.report`), in input order.
        report: The report CSV written.
        seconds: Wall time of the whole call.
        ray_start_seconds: Time to start (or connect to) Ray; 0 when no input needed a worker.
        first_result_seconds: From the call to the first segmented input (Ray start, actor start-up,
            one input); 0 when none was segmented.
        colour: The projection every target was made grey with (``"luma"``: the input rules').
        colour_scores: ``colour="auto"``: leave-one-out Dice per candidate on the support set; else empty.
    """

    rows: list[dict[str, Any]]
    report: Path
    seconds: float = 0.0
    ray_start_seconds: float = 0.0
    first_result_seconds: float = 0.0
    colour: str = "luma"
    colour_scores: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = dict(Counter(r["status"] for r in self.rows))

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Rows a rerun takes up again (``failed`` and ``not-run``)."""
        return [r for r in self.rows if r["status"] in ("failed", "not-run")]


class DatasetInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: the report is written (unfinished inputs are ``not-run``); ``run`` holds it."""

    def __init__(self, run: DatasetRun) -> None:
        super().__init__(f"interrupted; report: {run.report}")
        self.run = run


def _number(value: Any, name: str, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= low:
        raise ValueError(f"{name} must be a number >= {low:g}, got {value!r}")
    return float(value)


def _load_support(support: Any, size: tuple[int, int], axis: int, max_slices: int, max_labels: int | None) -> Any:
    from ..support import SupportSet

    if isinstance(support, SupportSet):
        return support
    if isinstance(support, (tuple, list)) and len(support) == 2:
        return SupportSet.from_folder(support[0], support[1], size=size, axis=axis, max_slices=max_slices,
                                      max_labels=max_labels)
    if isinstance(support, (str, os.PathLike)):
        path = Path(support)
        if path.is_file():
            return SupportSet.load(path)
        return SupportSet.from_folder(path, size=size, axis=axis, max_slices=max_slices, max_labels=max_labels)
    raise TypeError(
        "support must be a SupportSet, a folder holding images/ and masks/, an (images_dir, masks_dir) pair "
        f"or a .safetensors file from SupportSet.save; got {type(support).__name__}"
    )


def _set_support(
    predictor: Any, support: Any, colour: str | ColourProjection, axis: int, max_slices: int, max_labels: int | None
) -> None:
    """The support set on the driver's Predictor. With a colour projection asked for and the support
    given as folders, it is fitted on the image files themselves (2D, paired by stem), as
    ``Predictor.set_support(images, masks, colour=...)`` does; a SupportSet or file keeps its own."""
    from ..colour import check_colour
    from ..io.images import paired_files

    colour = check_colour(colour)
    folders = None
    if isinstance(support, (tuple, list)) and len(support) == 2:
        folders = (support[0], support[1])
    elif isinstance(support, (str, os.PathLike)) and not Path(support).is_file():
        folders = (Path(support) / "images", Path(support) / "masks")
    if folders is None and isinstance(colour, str) and colour != "luma":
        raise ValueError(
            f"colour={colour!r} learns from the support images in colour, but a SupportSet (or .safetensors file) "
            "holds them grey already: give the support as a folder with images/ and masks/ (a set saved with a "
            "projection brings its own)"
        )
    if folders is None or isinstance(colour, str) and colour == "luma":
        predictor.set_support(_load_support(support, predictor.input_size, axis, max_slices, max_labels), colour=colour)
        return
    pairs = paired_files(*folders)
    predictor.set_support([p[1] for p in pairs], [p[2] for p in pairs], max_labels=max_labels, colour=colour)


def segment_dataset(
    inputs: str | os.PathLike | Sequence[str | os.PathLike] | None,
    support: Any,
    out_dir: str | os.PathLike,
    *,
    model: Any = None,
    pretrained: bool | None = None,
    only_failed: str | os.PathLike | None = None,
    report: str | os.PathLike | None = None,
    skip_existing: bool = False,
    address: str | None = None,
    num_workers: int = 1,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    batch_size: int = 1,
    max_retries: int = 3,
    device: str | None = "auto",
    threads: int | None = None,
    progress: bool = True,
    axis: int = 2,
    threshold: float = 0.5,
    ensemble: int = 1,
    support_size: int | None = None,
    flips: bool = False,
    seed: int = 0,
    max_labels: int | None = MAX_LABELS,
    support_slices: int = 16,
    colour: str | ColourProjection = "luma",
) -> DatasetRun:
    """Segment every input on a Ray actor pool; write each label map atomically and a report CSV.

    Outputs are what ``universeg-plus segment`` writes for the same input and options, byte for byte:
    a PNG label map for a 2D image, NIfTI with the input's affine and header for NIfTI, NPY for 3D NPY.

    Args:
        inputs: A folder, a glob, a CSV/Parquet manifest (``path`` column, optional ``output`` names
            relative to ``out_dir``) or a list of files (see :mod:`universeg_plus.cluster.jobs`);
            ``None`` with ``only_failed``.
        support: A :class:`~universeg_plus.support.SupportSet`, a folder holding ``images/`` and
            ``masks/``, an ``(images_dir, masks_dir)`` pair, or a ``.safetensors`` from ``SupportSet.save``.
        out_dir: Output folder (created).
        model: A model (``nn.Module``), a registered name, or ``None`` for the best one with trained
            weights; loaded once here and shipped to the workers through the object store.
        pretrained: As :class:`~universeg_plus.predictor.Predictor` (``False``: random weights for a name).
        only_failed: A previous report: rerun its ``failed`` and ``not-run`` inputs to the outputs it
            names, and update that report (unless ``report`` says where else).
        report: The report CSV (default ``out_dir/segment-dataset-report.csv``).
        skip_existing: Inputs whose output exists are ``skipped`` (outputs are only ever complete).
        address: ``None``: a local Ray instance on 127.0.0.1; else a cluster (``"auto"``, ``"ray://..."``).
        num_workers: Actors in the pool (each holds one Predictor).
        cpus_per_worker / gpus_per_worker: Ray resources of one actor (a fraction shares a GPU).
        batch_size: Inputs per Ray task (a retry redoes the whole batch).
        max_retries: Retries of a task whose worker died, before its inputs are ``failed``.
        device: Torch device of the workers, resolved by each on its own node: ``"auto"`` (the
            default; ``None`` alike) is CUDA when the worker has a Ray GPU (``gpus_per_worker``),
            else the CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"`` must exist on every worker's node.
        threads: Torch threads per worker (default: ``cpus_per_worker``, at least 1).
        progress: Show a progress bar.
        axis, threshold, ensemble, support_size, flips, seed: As :meth:`Predictor.predict_file`.
        max_labels, support_slices: How a support folder is read (as ``SupportSet.from_folder``).
        colour: How RGB images become the network's one channel (``Predictor.set_support(...,
            colour=)``, docs/colour.md): ``"luma"`` (default), ``"fisher"`` or ``"auto"``, fitted once
            here on the support folder's 2D image files, or a ``ColourProjection``; the support set
            carries it to every worker. A ``.safetensors`` support set saved with a projection
            brings its own.

    Returns:
        A :class:`DatasetRun` (the report rows, counts by status, timings).

    Raises:
        ValueError / TypeError / FileNotFoundError: bad inputs, support set or options, before any
            output is written. ImportError: Ray is not installed (names the ``[cluster]`` extra).
        DatasetInterrupted: Ctrl-C; the report was written first.
    """
    start = time.perf_counter()
    num_workers = as_count(num_workers, "num_workers")
    batch_size = as_count(batch_size, "batch_size")
    max_retries = as_count(max_retries, "max_retries", low=0)
    cpus = _number(cpus_per_worker, "cpus_per_worker", 0.0)
    gpus = _number(gpus_per_worker, "gpus_per_worker", 0.0)
    threads = as_count(threads if threads is not None else max(1, int(cpus)), "threads")
    device = check_device_name(AUTO if device is None else device)  # resolved by each worker on its node
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, but {out} is a file")
    if only_failed is not None:
        if inputs is not None:
            raise ValueError("give inputs or only_failed (a previous report), not both")
        previous = read_report(only_failed)
        jobs = rerun_jobs(only_failed)
        check_unique_outputs(jobs)
        report_path = Path(report) if report is not None else Path(only_failed)
    else:
        if inputs is None:
            raise ValueError("inputs is required (a folder, glob, manifest or list of files) unless only_failed is given")
        previous = []
        jobs = list_jobs(inputs, out)
        report_path = Path(report) if report is not None else out / REPORT_NAME

    # Everything that can be wrong is found here, before a worker starts or an output is written.
    from ..predictor import Predictor

    predictor = Predictor(model, device="cpu", pretrained=pretrained)
    _set_support(predictor, support, colour, axis, support_slices, max_labels)
    colour_info = {"colour": predictor.colour.name, "colour_scores": predictor.colour_scores}
    options = dict(threshold=threshold, ensemble=ensemble, support_size=support_size, flips=flips, seed=seed)
    predictor.check_options(**options)
    options["axis"] = as_count(axis, "axis", low=0, high=2)

    rows: dict[int, dict[str, Any]] = {}
    todo: list[tuple[int, Job]] = []
    for i, job in enumerate(jobs):
        if skip_existing and job.output.is_file():
            rows[i] = _row(job, "skipped")
        else:
            todo.append((i, job))
    log.info("%d input(s): %d to segment, %d skipped", len(jobs), len(todo), len(rows))
    timings = {"ray_start": 0.0, "first_result": 0.0, "single_node": 0.0}
    if todo:
        try:
            _run_on_ray(
                predictor, todo, rows, options, timings, start, address=address, num_workers=num_workers, cpus=cpus,
                gpus=gpus, batch_size=batch_size, max_retries=max_retries, device=device, threads=threads,
                progress=progress,
            )
        except KeyboardInterrupt:
            run = _finish(jobs, rows, previous, report_path, start, timings, colour_info)
            log.warning("interrupted: %d input(s) not run; report: %s", run.counts.get("not-run", 0), run.report)
            raise DatasetInterrupted(run) from None
        except Exception:  # Ray itself failed (e.g. workers that cannot start): what was done is still reported
            run = _finish(jobs, rows, previous, report_path, start, timings, colour_info)
            log.error("the run stopped: %d input(s) not run; report: %s", run.counts.get("not-run", 0), run.report)
            raise
    return _finish(jobs, rows, previous, report_path, start, timings, colour_info)


def _row(job: Job, status: str, error: str = "", seconds: float | None = None, worker: str = "") -> dict[str, Any]:
    return {"input": str(job.input), "output": str(job.output), "status": status, "error": error,
            "seconds": seconds, "worker": worker}


def _run_on_ray(
    predictor: Any, todo: list[tuple[int, Job]], rows: dict[int, dict[str, Any]], options: dict[str, Any],
    timings: dict[str, float], start: float, *, address: str | None, num_workers: int, cpus: float, gpus: float,
    batch_size: int, max_retries: int, device: str, threads: int, progress: bool,
) -> None:
    """Segment ``todo`` on Ray, filling ``rows`` as results stream in, and ``timings`` (seconds)."""
    from tqdm import tqdm

    from .session import ray_session
    from .worker import SegmentWorker

    t0 = time.perf_counter()
    local_cpus = None if address is not None else max(os.cpu_count() or 1, int(-(-num_workers * cpus // 1)))
    with ray_session(address, num_cpus=local_cpus) as ray:
        timings["ray_start"] = time.perf_counter() - t0
        # Temporaries of killed writers are recognised by their dead pid: only meaningful on this machine.
        here = ray.util.get_node_ip_address()
        timings["single_node"] = float(all(n["NodeManagerAddress"] == here for n in ray.nodes() if n["Alive"]))
        from ray.data import DataContext

        ctx = DataContext.get_current()
        saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "max_errored_blocks", "print_on_execution_start")}
        # Our progress bar, not Ray's; a task that fails every retry drops its rows (reported as failed).
        ctx.enable_progress_bars, ctx.max_errored_blocks, ctx.print_on_execution_start = False, -1, False
        data_log = logging.getLogger("ray.data")
        data_level = data_log.level
        if not log.isEnabledFor(logging.DEBUG):  # Ray Data's execution notes, unless -vv
            data_log.setLevel(logging.ERROR)
        try:
            items = [{"index": i, "input": str(job.input), "output": str(job.output)} for i, job in todo]
            with warnings.catch_warnings():
                # max_task_retries has no named parameter in Ray 2.60 (only the deprecated **ray_remote_args);
                # without it a worker that dies on an input would be retried forever (Ray Data's default).
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
                ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                    SegmentWorker,
                    fn_constructor_kwargs=dict(
                        model=ray.put(predictor.model), support=ray.put(predictor.support), options=options,
                        device=device, threads=threads,
                    ),
                    batch_size=batch_size, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=num_workers),
                    num_cpus=cpus, num_gpus=gpus or None, max_task_retries=max_retries,
                )
            jobs = dict(todo)
            bar = tqdm(total=len(todo), desc="segment-dataset", unit="input", disable=not progress)
            stream = iter(ds.iter_rows())
            try:
                for res in stream:
                    timings["first_result"] = timings["first_result"] or time.perf_counter() - start
                    i = int(res["index"])
                    rows[i] = _row(jobs[i], str(res["status"]), str(res["error"]), float(res["seconds"]),
                                   str(res["worker"]))
                    bar.update(1)
                    if res["status"] != "ok":
                        bar.set_postfix(failed=sum(r["status"] == "failed" for r in rows.values()))
            finally:
                bar.close()
                if hasattr(stream, "close"):  # stops the streaming executor early on Ctrl-C
                    stream.close()
        finally:
            for k, v in saved.items():
                setattr(ctx, k, v)
            data_log.setLevel(data_level)
    for i, job in todo:
        if i not in rows:
            rows[i] = _row(job, "failed", f"the worker died on all {max_retries + 1} tries (killed, or out of memory?)")


def _finish(
    jobs: list[Job], rows: dict[int, dict[str, Any]], previous: list[dict[str, str]], report_path: Path,
    start: float, timings: dict[str, float], colour_info: dict[str, Any],
) -> DatasetRun:
    """Report rows in input order (``not-run`` for the missing), merged into ``previous``; write the report."""
    done = [rows.get(i) or _row(job, "not-run") for i, job in enumerate(jobs)]
    if timings["single_node"]:  # temporaries of workers that were killed (on a cluster: left, hidden, to expire)
        for folder in sorted({Path(r["output"]).parent for r in done}):
            for stale in clean_stale_partials(folder):
                log.info("removed a stale temporary: %s", stale)
    if previous:
        new = {(r["input"], r["output"]): r for r in done}
        done = [new.get((r["input"], r["output"]), r) for r in previous]
    write_report(done, report_path)
    return DatasetRun(done, report_path, time.perf_counter() - start, timings["ray_start"], timings["first_result"],
                      **colour_info)
