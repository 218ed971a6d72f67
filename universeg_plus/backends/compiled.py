"""``compile``: the network -> a TVM Relax VM module with the model's own call contract."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import UniverSegConfig
from ..model import validate_inputs
from .cache import cache_key, default_cache_dir, load_entry, store_entry, weights_digest
from .export import export_relax
from .levels import PIPELINE_REVISION, build_pipeline, check_level, uses_host_cpu
from .targets import describe_target, require_tvm, resolve_target
from .tuning import database_digest, default_tuning_dir, open_database

__all__ = ["CompiledModel", "compile"]

log = logging.getLogger(__name__)

BACKENDS = ("tvm",)


class CompiledModel:
    """A compiled network, callable like the model: ``(target, support_images, support_labels) -> logits``.

    Shapes: target ``(B, 1, H, W)``, support images/labels ``(B, S, 1, H, W)`` torch tensors,
    with ``B == batch_size``, ``(H, W) == image_size`` and, for a fixed-S module,
    ``S == support_size``; returns logits ``(B, 1, H, W)`` (fp32 compute, the input's dtype).

    Attributes:
        config: The model's ``UniverSegConfig``.
        level: ``"O0"``..``"O3"``.
        support_size: Compiled S, or ``None`` (symbolic: any ``S >= 1``).
        batch_size: Compiled B.
        image_size: Compiled ``(H, W)``.
        target: The TVM target as JSON text.
        library_path: The cached library, or ``None`` when not cached.
        from_cache: Whether the library was loaded from the cache.
        compile_seconds: Export + build (or cache load) time.
    """

    def __init__(
        self,
        vm: Any,
        device: Any,
        config: UniverSegConfig,
        level: str,
        support_size: int | None,
        batch_size: int,
        image_size: tuple[int, int],
        target: str,
        library_path: Path | None,
        from_cache: bool,
        compile_seconds: float,
    ) -> None:
        self._vm = vm
        self._device = device
        self.config = config
        self.level = level
        self.support_size = support_size
        self.batch_size = batch_size
        self.image_size = image_size
        self.target = target
        self.library_path = library_path
        self.from_cache = from_cache
        self.compile_seconds = compile_seconds

    def __repr__(self) -> str:
        s = "any" if self.support_size is None else self.support_size
        return (
            f"CompiledModel(level={self.level!r}, batch_size={self.batch_size}, support_size={s}, "
            f"image_size={self.image_size}, target={self.target}, from_cache={self.from_cache})"
        )

    def _check(self, target: torch.Tensor, support_images: torch.Tensor, support_labels: torch.Tensor) -> None:
        validate_inputs(target, support_images, support_labels, self.config.size_multiple)
        b, _, h, w = target.shape
        s = support_images.shape[1]
        if (h, w) != tuple(self.image_size):
            raise ValueError(f"this module was compiled for images of size {tuple(self.image_size)}, got {(h, w)}")
        if b != self.batch_size:
            raise ValueError(f"this module was compiled for batch size B={self.batch_size}, got B={b}")
        if self.support_size is not None and s != self.support_size:
            raise ValueError(
                f"this module was compiled for support size S={self.support_size}, got S={s}; "
                "compile with support_size=None for any S"
            )

    def __call__(
        self, target: torch.Tensor, support_images: torch.Tensor, support_labels: torch.Tensor
    ) -> torch.Tensor:
        """Run the compiled network; see the class docstring for shapes."""
        import tvm

        self._check(target, support_images, support_labels)
        args = [
            tvm.runtime.tensor(np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy()), self._device)
            for x in (target, support_images, support_labels)
        ]
        out = self._vm["main"](*args)
        logits = torch.from_numpy(out[0].numpy())
        return logits.to(device=target.device, dtype=target.dtype)

    def forward(
        self, target: torch.Tensor, support_images: torch.Tensor, support_labels: torch.Tensor
    ) -> torch.Tensor:
        """Same as calling the object (``nn.Module``-style spelling)."""
        return self(target, support_images, support_labels)

    def eval(self) -> CompiledModel:
        """No-op (a compiled module is always in inference mode); returns self."""
        return self


def _device_for(tvm: Any, target: Any) -> Any:
    if target.kind.name == "cuda":
        return tvm.cuda(0)
    if target.kind.name == "llvm":
        return tvm.cpu(0)
    raise ValueError(f"unsupported target kind {target.kind.name!r}; use llvm (CPU) or cuda")


def compile(  # noqa: A001  (public name asked for by the API: universeg_plus.compile)
    model: nn.Module,
    backend: str = "tvm",
    level: str = "O2",
    support_size: int | None = None,
    image_size: tuple[int, int] | None = None,
    batch_size: int = 1,
    target: str | dict | None = None,
    cache_dir: str | Path | None = None,
    tuning_dir: str | Path | None = None,
    use_cache: bool = True,
) -> CompiledModel:
    """Compile a network with Apache TVM into a :class:`CompiledModel`.

    Path: ``torch.export`` of the split form -> ``from_exported_program`` -> the level's Relax
    pipeline (see :mod:`universeg_plus.backends.levels`) -> ``tvm.compile`` -> Relax VM.

    Args:
        model: A ``UniverSegPlus`` (anything with ``.config`` following the model contract).
        backend: ``"tvm"`` (the only one).
        level: ``"O0"``, ``"O1"``, ``"O2"`` (default) or ``"O3"`` (MetaSchedule database, see
            ``universeg-plus tune``).
        support_size: Static S, or ``None`` for one module with a symbolic S that serves any S.
        image_size: ``(H, W)``, divisible by ``model.config.size_multiple``; default
            ``model.config.input_size`` (what the weights were trained at).
        batch_size: Static B.
        target: ``None`` (host CPU; generic x86-64 for O0/O1, this CPU's ``mcpu`` for O2/O3), a
            JSON dict such as ``{"kind": "llvm", "mcpu": "znver4"}`` or ``{"kind": "cuda"}``.
        cache_dir: Compiled-library cache (default ``~/.cache/universeg_plus/tvm``, or
            ``$UNIVERSEG_PLUS_CACHE/tvm``).
        tuning_dir: O3's tuning database folder (default ``<cache>/tvm/tuning``).
        use_cache: ``False`` builds without reading or writing the cache.

    Raises:
        ImportError: apache-tvm is not installed (``pip install "universeg-plus[tvm]"``).
        ValueError: Bad level, shapes, backend or target.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    check_level(level)
    if not isinstance(model, nn.Module) or not isinstance(getattr(model, "config", None), UniverSegConfig):
        raise TypeError(f"model must be a UniverSegPlus (an nn.Module with a UniverSegConfig), got {type(model).__name__}")
    if support_size is not None and (not isinstance(support_size, int) or support_size < 1):
        raise ValueError(f"support_size must be an int >= 1 or None (any S), got {support_size!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if image_size is None:
        image_size = tuple(model.config.input_size)
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"image_size must be (H, W), got {image_size!r}") from exc
    f = model.config.size_multiple
    if h <= 0 or w <= 0 or h % f or w % f:
        raise ValueError(f"image_size must be positive and divisible by {f}, got {(h, w)}")
    tvm = require_tvm()
    from tvm import relax

    start = time.perf_counter()
    tgt = resolve_target(target, portable=not uses_host_cpu(level))
    device = _device_for(tvm, tgt)
    target_text = describe_target(tgt)

    database, db_digest = None, None
    if level == "O3":
        tdir = Path(tuning_dir) if tuning_dir is not None else default_tuning_dir()
        database = open_database(tdir)
        db_digest = database_digest(tdir)
        if database is None:
            raise RuntimeError(
                f"level O3 needs a MetaSchedule tuning database and {tdir} has none; run "
                "`universeg-plus tune` (or universeg_plus.backends.tune) for this target and these shapes first"
            )

    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # what was built, for whom: part of the cache key and stored beside the library
    build = {
        "level": level,
        "target": target_text,
        "batch_size": batch_size,
        "support_size": support_size,
        "image_size": [h, w],
        "tvm": tvm.__version__,
    }
    key = cache_key(
        weights=weights_digest(model),
        config=model.config.model_dump(mode="json"),
        pipeline=PIPELINE_REVISION,
        tuning_db=db_digest,
        **build,
    )
    lib = load_entry(cdir, key) if use_cache else None
    from_cache = lib is not None
    lib_path = cdir / f"{key}.so" if use_cache else None
    if lib is None:
        mod = export_relax(model, batch_size, support_size, (h, w))
        log.info("building %s for %s (B=%d, S=%s, %dx%d)", level, target_text, batch_size, support_size, h, w)
        executable = tvm.compile(mod, target=tgt, relax_pipeline=build_pipeline(level, tgt, database))
        if use_cache:
            lib_path = store_entry(cdir, key, executable, dict(build))
            lib = load_entry(cdir, key)
        else:
            lib = executable
    vm = relax.VirtualMachine(lib, device)
    seconds = time.perf_counter() - start
    log.info("%s %s in %.2f s", "loaded" if from_cache else "compiled", level, seconds)
    return CompiledModel(
        vm=vm,
        device=device,
        config=model.config,
        level=level,
        support_size=support_size,
        batch_size=batch_size,
        image_size=(h, w),
        target=target_text,
        library_path=lib_path,
        from_cache=from_cache,
        compile_seconds=seconds,
    )
