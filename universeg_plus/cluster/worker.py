"""The actor of a dataset run: one Predictor per worker process, fed batches of (input, output) rows.

Ray Data builds one :class:`SegmentWorker` per actor of the pool: the model and the support set come
from the object store (put there once by the driver), so a node reads neither weights nor examples
from disk, and every actor segments with the same weights. Each row goes through
:meth:`universeg_plus.predictor.Predictor.predict_file`, the same call ``universeg-plus segment``
makes, which writes the output atomically; an input that cannot be segmented becomes a ``failed``
row with its error, never an exception that would stop the run.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import numpy as np

__all__ = ["SegmentWorker", "worker_device"]

log = logging.getLogger(__name__)


def worker_device(device: str) -> str:
    """The torch device of this worker, resolved on its own node.

    ``"auto"``: CUDA when this worker has a Ray GPU (``gpus_per_worker`` > 0) and CUDA works here,
    else the CPU; a GPU Ray did not give this worker is never taken. Any other name must exist
    here (:func:`~universeg_plus.devices.resolve_device`: RuntimeError otherwise).
    """
    import ray
    import torch

    from ..devices import AUTO, resolve_device

    if device == AUTO:
        return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    return str(resolve_device(device))


def _resolve(value: Any) -> Any:
    """A value, or what an object-store reference points to."""
    import ray

    return ray.get(value) if isinstance(value, ray.ObjectRef) else value


class SegmentWorker:
    """Segment rows ``{"input", "output"}`` with one Predictor (the callable class of ``map_batches``).

    Args:
        model: The network (or an object-store reference to it), on the CPU.
        support: The :class:`~universeg_plus.support.SupportSet` at the model's input size (or a reference).
        options: Keyword options of ``predict_file`` (threshold, ensemble, support_size, flips, seed, axis).
        device: ``"auto"`` (the GPU Ray assigned to this actor, else the CPU) or a torch device
            (see :func:`worker_device`).
        threads: Torch CPU threads of this actor.
    """

    def __init__(self, model: Any, support: Any, options: dict[str, Any], device: str, threads: int) -> None:
        import torch

        from ..predictor import Predictor

        torch.set_num_threads(threads)
        device = worker_device(device)
        self.predictor = Predictor(_resolve(model), device=device)
        self.predictor.set_support(_resolve(support))
        self.options = dict(options)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        nice = os.nice(0) if hasattr(os, "nice") else 0
        log.info("worker %s ready on %s (niceness %d)", self.worker, device, nice)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Segment every row of ``batch``; returns its rows with status, error, seconds and worker."""
        out: dict[str, list[Any]] = {k: [] for k in ("index", "status", "error", "seconds", "worker")}
        for index, src, dest in zip(batch["index"], batch["input"], batch["output"]):
            start = time.perf_counter()
            try:
                self.predictor.predict_file(str(src), str(dest), **self.options)
                status, error = "ok", ""
            except Exception as exc:  # noqa: BLE001  (any failure of one input is that input's row)
                status, error = "failed", f"{type(exc).__name__}: {exc}"
                log.warning("%s failed: %s", src, error)
            out["index"].append(int(index))
            out["status"].append(status)
            out["error"].append(error)
            out["seconds"].append(time.perf_counter() - start)
            out["worker"].append(self.worker)
        return {
            "index": np.asarray(out["index"], dtype=np.int64),
            "status": np.asarray(out["status"], dtype=object),
            "error": np.asarray(out["error"], dtype=object),
            "seconds": np.asarray(out["seconds"], dtype=np.float64),
            "worker": np.asarray(out["worker"], dtype=object),
        }
