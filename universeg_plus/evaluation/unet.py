"""The per-task U-Net network; it lives in :mod:`universeg_plus.nn.unet`."""

from ..nn.unet import UNet

__all__ = ["UNet"]
