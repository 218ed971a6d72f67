"""The architecture configuration: one frozen, validated object that travels with the weights."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Activation = Literal["leakyrelu", "relu", "gelu"]
#: How the network evaluates its cross-convolutions: ``"split"`` (fast) or ``"pairwise"`` (the official form).
ForwardMode = Literal["split", "pairwise"]

__all__ = ["Activation", "ForwardMode", "UniverSegConfig"]


class UniverSegConfig(BaseModel):
    """Architecture of a UniverSeg-style CrossConv network.

    The defaults are the official UniverSeg v1 network (``universeg-v1``).

    Attributes:
        encoder_blocks: Width of each encoder CrossBlock (cross-conv features = conv features).
            The outputs of every encoder block but the last are skip connections.
        decoder_blocks: Width of each decoder CrossBlock; ``None`` means the encoder widths
            reversed without the last one, as in the official model. Must have
            ``len(encoder_blocks) - 1`` entries.
        activation: Non-linearity after each block's target/support 3x3 convs.
        cross_activation: Non-linearity right after the cross-conv (``None`` in v1; the paper's
            formula has one).
        out_conv: ``True``: a final 1x1 conv maps the last decoder width to one logit channel
            (v1). ``False``: the last decoder block's *target* conv emits the single logit channel
            itself, with no activation after it (its support conv is unchanged and, as in v1, its
            output is unused).
        input_size: ``(H, W)`` the network was trained at; the Predictor resizes inputs to it.
        negative_slope: Slope of LeakyReLU for negative inputs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    encoder_blocks: tuple[int, ...] = (64, 64, 64, 64)
    decoder_blocks: tuple[int, ...] | None = None
    activation: Activation = "leakyrelu"
    cross_activation: Activation | None = None
    out_conv: bool = True
    input_size: tuple[int, int] = (128, 128)
    negative_slope: float = Field(0.01, ge=0.0)

    @field_validator("encoder_blocks")
    @classmethod
    def _check_encoder(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(v) == 0:
            raise ValueError("encoder_blocks must hold at least one width, got an empty tuple")
        if any(w <= 0 for w in v):
            raise ValueError(f"encoder_blocks widths must be positive, got {v}")
        return v

    @field_validator("decoder_blocks")
    @classmethod
    def _check_decoder(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if v is not None and any(w <= 0 for w in v):
            raise ValueError(f"decoder_blocks widths must be positive, got {v}")
        return v

    @field_validator("input_size")
    @classmethod
    def _check_size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if any(s <= 0 for s in v):
            raise ValueError(f"input_size must be positive, got {v}")
        return v

    @model_validator(mode="after")
    def _check_consistency(self) -> UniverSegConfig:
        n_dec = len(self.resolved_decoder_blocks)
        if n_dec != len(self.encoder_blocks) - 1:
            raise ValueError(
                f"decoder_blocks must have len(encoder_blocks) - 1 = {len(self.encoder_blocks) - 1} "
                f"entries, got {n_dec}"
            )
        if not self.out_conv and n_dec == 0:
            raise ValueError("out_conv=False needs at least one decoder block to emit the logit")
        f = self.size_multiple
        if any(s % f for s in self.input_size):
            raise ValueError(f"input_size {self.input_size} must be divisible by {f}")
        return self

    @property
    def resolved_decoder_blocks(self) -> tuple[int, ...]:
        """Decoder widths with the ``None`` default resolved."""
        if self.decoder_blocks is None:
            return tuple(self.encoder_blocks[-2::-1])
        return self.decoder_blocks

    @property
    def size_multiple(self) -> int:
        """H and W must be divisible by this: ``2 ** (len(encoder_blocks) - 1)``."""
        return 2 ** (len(self.encoder_blocks) - 1)
