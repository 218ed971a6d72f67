"""Layers of the CrossConv network."""

from .blocks import ConvOp, CrossBlock, CrossOp, Vmap, make_activation
from .cross_conv import CrossConv2d

__all__ = ["ConvOp", "CrossBlock", "CrossConv2d", "CrossOp", "Vmap", "make_activation"]
