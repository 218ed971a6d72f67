"""torch.export of the split-form network -> a Relax ``IRModule`` (weights bound as constants)."""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import torch
from torch import nn

from .targets import require_tvm

__all__ = ["MAX_SUPPORT", "export_relax", "example_inputs"]

log = logging.getLogger(__name__)

# Upper bound of the symbolic support dimension (torch.export needs one; TVM does not use it).
MAX_SUPPORT = 4096


def example_inputs(
    batch_size: int, support_size: int, image_size: tuple[int, int], seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random model inputs: target ``(B,1,H,W)`` and support images/labels ``(B,S,1,H,W)`` float32."""
    g = torch.Generator().manual_seed(seed)
    h, w = image_size
    target = torch.rand(batch_size, 1, h, w, generator=g)
    images = torch.rand(batch_size, support_size, 1, h, w, generator=g)
    labels = (torch.rand(batch_size, support_size, 1, h, w, generator=g) > 0.5).float()
    return target, images, labels


def export_relax(
    model: nn.Module, batch_size: int, support_size: int | None, image_size: tuple[int, int]
) -> Any:
    """Export ``model`` (its split cross-conv form, fp32, CPU) to a Relax ``IRModule``.

    Args:
        model: A ``UniverSegPlus``; it is copied, never modified.
        batch_size: Static B.
        support_size: Static S, or ``None`` for a symbolic S that serves any ``S >= 1``.
        image_size: Static ``(H, W)`` (the importer's upsample needs static spatial sizes).

    Returns:
        ``tvm.IRModule`` whose ``main(target, support_images, support_labels)`` returns a
        one-element tuple holding the logits ``(B, 1, H, W)``.
    """
    require_tvm()
    from tvm.relax.frontend.torch import from_exported_program

    net = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    if hasattr(net, "mode"):
        net.mode = "split"
    # With a symbolic S the example must not be 1: torch.export specialises size-1 dimensions.
    s_example = support_size if support_size is not None else 2
    inputs = example_inputs(batch_size, s_example, image_size)
    dynamic: Any = None
    if support_size is None:
        s_dim = torch.export.Dim("support_size", min=1, max=MAX_SUPPORT)
        dynamic = ({}, {1: s_dim}, {1: s_dim})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # torch's pytree deprecation noise
        with torch.no_grad():
            program = torch.export.export(net, inputs, dynamic_shapes=dynamic)
    mod = from_exported_program(program, keep_params_as_input=False)
    log.debug("exported %s to Relax (B=%d, S=%s, %s)", type(model).__name__, batch_size, support_size, image_size)
    return mod
