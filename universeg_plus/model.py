"""The UniverSeg-style CrossConv network: tensors in, logits out.

What ``forward`` checks (eagerly; ``torch.compile``/``torch.export`` tracing skips the checks):

- shapes ``(B, 1, H, W)`` / ``(B, S, 1, H, W)``, ``S >= 1``, ``H, W >= 1`` and divisible by
  ``config.size_multiple``; floating dtypes shared by the three inputs (:func:`validate_inputs`);
- the inputs are on the model's device (the message names both);
- the activation memory, estimated from the config (:func:`estimate_activation_bytes`), fits in
  the free memory of the device;
- values (:func:`check_input_values`, a min and a max per input, one device sync per call):
  finite, images in [0, 1], labels in [0, 1] (binary {0, 1}; soft labels allowed), each to
  within :data:`RANGE_TOLERANCE`.

Inputs of another floating dtype than the weights (float64, float16, bfloat16) are cast to the
weights' dtype: the values live in [0, 1], where every float type holds an 8-bit image to within
half a grey level, so the cast changes nothing that matters.
"""

from __future__ import annotations

import math
import os
from functools import partial

import torch
from einops import rearrange
from torch import nn

from .config import ForwardMode, UniverSegConfig
from .hub.mixin import PretrainedMixin
from .nn import ConvOp, CrossBlock, make_activation

__all__ = [
    "RANGE_TOLERANCE",
    "ForwardMode",
    "UniverSegPlus",
    "check_input_values",
    "estimate_activation_bytes",
    "validate_inputs",
]

_MODES = ("split", "pairwise")
#: How far outside [0, 1] an image or label value may be (float round-off of resizing).
RANGE_TOLERANCE = 1e-3
# Peak activations per (target or support) entry, in units of sum_l width_l * H_l * W_l over the
# encoder levels. Measured by `python benchmarks/bench_input_checks.py --memory` (CPU peak RSS, B=1,
# S in {8, 32}, 128/256 px; benchmarks/results/bench_input_checks_memory.md): split inference
# 2.2-2.4 (3.3 at 128 px, where fixed costs weigh more), pairwise 8.7, with gradients 8.1.
_ACTIVATION_FACTOR = {("split", False): 2.5, ("pairwise", False): 9.0, ("split", True): 9.0, ("pairwise", True): 12.0}
_CHECK_MEMORY_ABOVE = 1 << 30  # smaller estimates are not checked (reading free memory costs a syscall)


def validate_inputs(
    target_image: torch.Tensor,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    size_multiple: int = 1,
) -> None:
    """Check the model's input contract; raise ``TypeError``/``ValueError`` naming what is wrong.

    Args:
        target_image: ``(B, 1, H, W)`` float.
        support_images: ``(B, S, 1, H, W)`` float, ``S >= 1``.
        support_labels: ``(B, S, 1, H, W)`` float.
        size_multiple: H and W must be divisible by it.
    """
    named = {
        "target_image": (target_image, "(B, 1, H, W)", 4),
        "support_images": (support_images, "(B, S, 1, H, W)", 5),
        "support_labels": (support_labels, "(B, S, 1, H, W)", 5),
    }
    for name, (t, expected, ndim) in named.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor {expected}, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
        if t.ndim != ndim:
            raise ValueError(f"{name} must have shape {expected}, got {tuple(t.shape)} ({t.ndim}D)")
    b, c, h, w = target_image.shape
    if c != 1:
        raise ValueError(f"target_image must have shape (B, 1, H, W), got {tuple(target_image.shape)}")
    if support_images.shape != support_labels.shape:
        raise ValueError(
            "support_images and support_labels must have the same shape (B, S, 1, H, W), got "
            f"{tuple(support_images.shape)} and {tuple(support_labels.shape)}"
        )
    sb, s, sc, sh, sw = support_images.shape
    if s == 0:
        raise ValueError("the support set is empty: support_images has S = 0 entries; need S >= 1")
    expected = (b, s, 1, h, w)
    if (sb, sc, sh, sw) != (b, 1, h, w):
        raise ValueError(
            f"support_images must have shape (B, S, 1, H, W) = {expected} to match target_image "
            f"{tuple(target_image.shape)}, got {tuple(support_images.shape)}"
        )
    if h < 1 or w < 1:
        raise ValueError(f"H and W must be at least {max(1, size_multiple)}, got H={h}, W={w} (an empty image)")
    if h % size_multiple or w % size_multiple:
        raise ValueError(
            f"H and W must be divisible by {size_multiple} (2 ** (encoder blocks - 1)), got H={h}, W={w}"
        )
    if target_image.dtype != support_images.dtype or support_images.dtype != support_labels.dtype:
        raise TypeError(
            "all inputs must share one dtype, got "
            f"{target_image.dtype}, {support_images.dtype}, {support_labels.dtype}"
        )


def estimate_activation_bytes(
    config: UniverSegConfig,
    batch: int,
    support: int,
    height: int,
    width: int,
    mode: ForwardMode = "split",
    gradients: bool = False,
    itemsize: int = 4,
) -> int:
    """Rough peak activation memory of one forward pass, in bytes.

    ``itemsize * B * (S + 1) * factor * sum_l width_l * (H / 2**l) * (W / 2**l)`` over the encoder
    levels, with ``factor`` measured on CPU (about 2.5 for the split form, 9 for the pairwise form
    or with gradients kept for backward). Good to a factor of about 1.5: enough to refuse an input
    that cannot fit, not to plan a tight budget.
    """
    pixels = sum(w * (height / 4**i) * width for i, w in enumerate(config.encoder_blocks))
    factor = _ACTIVATION_FACTOR[(mode, bool(gradients))]
    return int(itemsize * batch * (support + 1) * factor * pixels)


def _free_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device``, or ``None`` when unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _bounds(t: torch.Tensor) -> tuple[float | torch.Tensor, float | torch.Tensor]:
    """``(min, max)`` of ``t`` (NaN if it holds a NaN): Python floats for CPU tensors, 0-d tensors otherwise.

    CPU tensors are reduced through NumPy, single-threaded: a torch reduction over more than 32k
    elements wakes the intra-op thread pool, which on a busy machine costs a scheduling slice
    (measured: 28 ms instead of 0.03 ms for 262k floats with 2 threads under load).
    """
    t = t.detach()
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64, torch.float16):
        a = t.numpy()
        return float(a.min()), float(a.max())
    lo, hi = torch.aminmax(t)
    return lo.float(), hi.float()


def check_input_values(
    target_image: torch.Tensor, support_images: torch.Tensor, support_labels: torch.Tensor
) -> None:
    """Refuse NaN/inf, images outside [0, 1] and labels outside [0, 1] (a min and a max per input).

    Device tensors are reduced with ``aminmax`` and read back in one sync.

    Raises:
        ValueError: naming the input, the range found and how to fix it.
    """
    named = [(n, t) for n, t in (("target_image", target_image), ("support_images", support_images),
                                 ("support_labels", support_labels)) if t.numel()]
    bounds = [v for _, t in named for v in _bounds(t)]
    if any(isinstance(v, torch.Tensor) for v in bounds):
        bounds = torch.stack([torch.as_tensor(v, dtype=torch.float32).to(named[0][1].device) for v in bounds]).tolist()
    for k, (name, t) in enumerate(named):
        lo, hi = bounds[2 * k], bounds[2 * k + 1]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            bad = int((~torch.isfinite(t.detach())).sum())
            raise ValueError(
                f"{name} contains NaN or inf values ({bad} of {t.numel()}); the network needs finite inputs"
            )
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            if name == "support_labels":
                fix = ("labels must be in [0, 1] (binary {0, 1} masks; soft labels allowed): divide 0/255 masks "
                       "by 255, give one-vs-rest indicators (labels == c) for label maps, or build a SupportSet")
            else:
                fix = ("images must be in [0, 1]: min-max scale each image (x - x.min()) / (x.max() - x.min()), "
                       "or let SupportSet / Predictor prepare them")
            raise ValueError(f"{name} has values in [{lo:g}, {hi:g}]; {fix}")


class UniverSegPlus(PretrainedMixin, nn.Module):
    """UniverSeg-style in-context segmentation network.

    ``UniverSegPlus.from_pretrained(name_or_folder_or_repo)``, ``model.save_pretrained(folder)`` and
    ``model.push_to_hub(repo_id)`` come from :class:`~universeg_plus.hub.mixin.PretrainedMixin`
    (huggingface_hub's mixin pattern: the hub is handed this class, it never imports it).

    ``model(target_image, support_images, support_labels) -> logits``

    Args:
        config: The architecture (``UniverSegConfig()`` is official v1).
        mode: ``"split"`` (default): exact algebraic rewrite, the cross-conv's target half is
            computed once per target, and the last decoder block computes only the target (with
            the support mean taken before the upsample and the cross-conv when there is no
            cross activation). ``"pairwise"``: the official form, every (target, support) pair.
            Both give the same logits (to float rounding) from the same state_dict.

    Shapes:
        target_image ``(B, 1, H, W)`` float in [0, 1]; support_images and support_labels
        ``(B, S, 1, H, W)``, images in [0, 1], labels in {0, 1} (soft allowed); H, W divisible by
        ``config.size_multiple``. Returns raw logits ``(B, 1, H, W)``; sigmoid > 0.5 is foreground.
    """

    def __init__(self, config: UniverSegConfig | None = None, mode: ForwardMode = "split") -> None:
        super().__init__()
        self.config = config if config is not None else UniverSegConfig()
        self.mode = mode
        cfg = self.config
        act = partial(make_activation, cfg.activation, cfg.negative_slope)
        cross_act = make_activation(cfg.cross_activation, cfg.negative_slope)

        self.enc_blocks = nn.ModuleList()
        self.dec_blocks = nn.ModuleList()
        t_ch, s_ch = 1, 2
        skips: list[int] = []
        for width in cfg.encoder_blocks:
            self.enc_blocks.append(CrossBlock(t_ch, s_ch, width, act, cross_act))
            t_ch = s_ch = width
            skips.append(width)
        dec = cfg.resolved_decoder_blocks
        for i, (width, skip) in enumerate(zip(dec, skips[-2::-1])):
            last = i == len(dec) - 1
            emits_logit = last and not cfg.out_conv
            self.dec_blocks.append(
                CrossBlock(
                    t_ch + skip,
                    s_ch + skip,
                    width,
                    act,
                    cross_act,
                    target_out=1 if emits_logit else None,
                    target_activation=not emits_logit,
                )
            )
            t_ch = s_ch = width
        self.out_conv = ConvOp(t_ch, 1, kernel_size=1, activation=None) if cfg.out_conv else None
        self.downsample = nn.MaxPool2d(2)
        self.upsample = nn.UpsamplingBilinear2d(scale_factor=2)

    @property
    def mode(self) -> ForwardMode:
        """The forward form, ``"split"`` or ``"pairwise"``; settable."""
        return self._mode

    @mode.setter
    def mode(self, value: ForwardMode) -> None:
        if value not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {value!r}")
        self._mode = value

    def _per_entry(self, op: nn.Module, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        y = op(rearrange(x, "b s c h w -> (b s) c h w"))
        return rearrange(y, "(b s) c h w -> b s c h w", b=b)

    def forward(
        self,
        target_image: torch.Tensor,
        support_images: torch.Tensor,
        support_labels: torch.Tensor,
    ) -> torch.Tensor:
        """Segment the target from the support set; see the class docstring for shapes.

        Raises:
            TypeError / ValueError: see the module docstring for what is checked.
        """
        if not (torch.compiler.is_compiling() or torch.compiler.is_exporting()):
            target_image, support_images, support_labels = self._check_inputs(
                target_image, support_images, support_labels
            )
        pairwise = self.mode == "pairwise"
        target = rearrange(target_image, "b 1 h w -> b 1 1 h w")
        support = torch.cat([support_images, support_labels], dim=2)

        skips: list[tuple[torch.Tensor, torch.Tensor]] = []
        n_enc = len(self.enc_blocks)
        for i, block in enumerate(self.enc_blocks):
            if not pairwise and n_enc == 1:
                target = block.forward_target(target, support)
                break
            target, support = block(target, support, pairwise=pairwise)
            if i == n_enc - 1:
                break
            skips.append((target, support))
            target = self._per_entry(self.downsample, target)
            support = self._per_entry(self.downsample, support)

        n_dec = len(self.dec_blocks)
        for i, block in enumerate(self.dec_blocks):
            t_skip, s_skip = skips.pop()
            target = torch.cat([self._per_entry(self.upsample, target), t_skip], dim=2)
            if pairwise or i < n_dec - 1:
                support = torch.cat([self._per_entry(self.upsample, support), s_skip], dim=2)
                target, support = block(target, support, pairwise=pairwise)
                continue
            # Last block, split form: only the target is needed.
            if block.cross.act is None:
                # mean and (linear) upsample commute: average at low resolution.
                support = torch.cat(
                    [
                        self._per_entry(self.upsample, support.mean(dim=1, keepdim=True)),
                        s_skip.mean(dim=1, keepdim=True),
                    ],
                    dim=2,
                )
            else:
                support = torch.cat([self._per_entry(self.upsample, support), s_skip], dim=2)
            target = block.forward_target(target, support)

        target = rearrange(target, "b 1 c h w -> b c h w")
        if self.out_conv is not None:
            target = self.out_conv(target)
        return target

    def _check_inputs(
        self, target_image: torch.Tensor, support_images: torch.Tensor, support_labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        validate_inputs(target_image, support_images, support_labels, self.config.size_multiple)
        param = next(self.parameters())
        for name, t in (
            ("target_image", target_image), ("support_images", support_images), ("support_labels", support_labels)
        ):
            if t.device != param.device:
                raise ValueError(
                    f"{name} is on device {t.device} but the model is on {param.device}: move the inputs with "
                    f".to({str(param.device)!r}), or the model with model.to({str(t.device)!r})"
                )
        b, s, _, h, w = support_images.shape
        grad = torch.is_grad_enabled() and (param.requires_grad or target_image.requires_grad)
        need = estimate_activation_bytes(self.config, b, s, h, w, self.mode, grad, param.element_size())
        if need > _CHECK_MEMORY_ABOVE:
            free = _free_memory(param.device)
            if free is not None and need > free:
                size = tuple(self.config.input_size)
                raise ValueError(
                    f"this forward pass needs about {need / 2**30:.1f} GiB of activation memory (B={b}, S={s}, "
                    f"{h}x{w} px, {self.mode} form{', gradients kept' if grad else ''}) but only "
                    f"{free / 2**30:.1f} GiB is free on {param.device}. Memory grows with B x S x H x W: resize "
                    f"the images to the model's input size {size[0]}x{size[1]} (Predictor does this for images "
                    "of any size), or send fewer support examples per pass (Predictor's support_chunk, max_pairs)"
                )
        if target_image.dtype != param.dtype:
            target_image, support_images, support_labels = (
                t.to(param.dtype) for t in (target_image, support_images, support_labels)
            )
        check_input_values(target_image, support_images, support_labels)
        return target_image, support_images, support_labels

    @classmethod
    def from_config(cls, config: UniverSegConfig | dict, mode: ForwardMode = "split") -> UniverSegPlus:
        """Build from a config object or its dict/JSON form (randomly initialised)."""
        if not isinstance(config, UniverSegConfig):
            config = UniverSegConfig.model_validate(config)
        return cls(config, mode=mode)

    def num_parameters(self) -> int:
        """Number of parameters."""
        return sum(p.numel() for p in self.parameters())
