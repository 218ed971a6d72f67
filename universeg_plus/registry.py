"""Named model variants and the table of pretrained weights (timm-style: one table, no branches).

Data only: names, configs and where each variant's weights live. Building a model, with or
without its weights, is :func:`universeg_plus.factory.create_model` (above ``hub/``), so this
module imports nothing but the config.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .config import UniverSegConfig

__all__ = [
    "ModelEntry",
    "PretrainedEntry",
    "DEFAULT_MODEL_ENV",
    "FALLBACK_MODEL",
    "PRETRAINED",
    "default_model_name",
    "get_config",
    "list_models",
    "list_pretrained",
    "model_entry",
    "register_model",
    "register_pretrained",
]


class ModelEntry(BaseModel):
    """A named configuration."""

    model_config = ConfigDict(frozen=True)

    name: str
    config: UniverSegConfig
    description: str


class PretrainedEntry(BaseModel):
    """Where a variant's pretrained weights live and what they expect.

    Attributes:
        model: Registered variant name the weights belong to.
        hub_id: Hugging Face Hub repo id (``org/repo``), or ``None`` when only shipped locally.
        revision: Pinned git revision (branch, tag or 40-hex commit) on the hub.
        filename: Weights file in the repo / shipped folder.
        sha256: Expected SHA-256 of the weights file, checked before loading.
        local_dir: Folder under the package's ``weights/`` directory holding a shipped copy.
        prefer_local: Use the shipped copy (no network) when it exists.
        input_size: ``(H, W)`` the weights were trained at.
        heldout_dice: Mean Dice over the held-out tasks at support size 16, copied from the
            weights' model card (``None``: not measured). :func:`default_model_name` picks the
            entry with the highest figure.
        license: Licence of the weights (inherits the training data's terms); shown when they are
            first downloaded.
        citation: How to cite them.
        url: Direct download address of a released checkpoint in the official UniverSeg layout (a
            ``torch.save``'d state_dict), fetched once into the user cache and converted to
            safetensors there (:mod:`universeg_plus.hub.official`).
        url_env: Environment variable that, when set, replaces ``url`` (a mirror or a ``file://``
            path); the file is still checked against ``size`` and ``git_blob_id``.
        size: Exact size in bytes of the file at ``url``, when known (checked against the server's
            ``Content-Length`` before downloading, and after). The git blob id commits to the size
            anyway (its header is ``blob <size>``); without a size, downloads stop at 64 MiB.
        git_blob_id: Git's object id of that file (``sha1(b"blob <size>\\0" + bytes)``, what
            ``git hash-object`` prints): how the release is identified across the public copies.
            SHA-1 alone does not stop a determined forger, so the file is also read as tensors only
            (never unpickling code) and the SHA-256 of what was verified is recorded in the cache.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    hub_id: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$")
    revision: str = Field("main", min_length=1)
    filename: str = "model.safetensors"
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    local_dir: str | None = None
    prefer_local: bool = True
    input_size: tuple[int, int] = (128, 128)
    heldout_dice: float | None = Field(None, ge=0.0, le=1.0)
    license: str = "unknown"
    citation: str = ""
    url: str | None = Field(None, pattern=r"^(https?|file)://")
    url_env: str | None = Field(None, pattern=r"^[A-Z][A-Z0-9_]*$")
    size: int | None = Field(None, gt=0)
    git_blob_id: str | None = Field(None, pattern=r"^[0-9a-f]{40}$")

    @model_validator(mode="after")
    def _check_source(self) -> PretrainedEntry:
        if self.hub_id is None and self.local_dir is None and self.url is None:
            raise ValueError(f"pretrained entry for {self.model!r} needs a hub_id, a local_dir or a url")
        if self.url is not None and self.git_blob_id is None:
            raise ValueError(f"pretrained entry for {self.model!r} has a url but no git_blob_id to check it against")
        return self


_MODELS: dict[str, ModelEntry] = {}
PRETRAINED: dict[str, PretrainedEntry] = {}


def register_model(name: str, config: UniverSegConfig, description: str) -> None:
    """Add a named variant; names are unique."""
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = ModelEntry(name=name, config=config, description=description)


def register_pretrained(name: str, entry: PretrainedEntry) -> None:
    """Declare pretrained weights under ``name`` (usually the variant's own name)."""
    if entry.model not in _MODELS:
        raise ValueError(f"pretrained entry {name!r} refers to unknown model {entry.model!r}")
    PRETRAINED[name] = entry


def list_models(pretrained: bool = False) -> list[str]:
    """Registered variant names (only those with pretrained weights if ``pretrained``)."""
    if pretrained:
        return sorted({e.model for e in PRETRAINED.values()})
    return sorted(_MODELS)


def list_pretrained() -> list[str]:
    """Names in the pretrained-weights table."""
    return sorted(PRETRAINED)


#: The model named when no pretrained weights are declared at all (the official architecture).
FALLBACK_MODEL = "universeg-v1"
#: Environment variable naming the default model of the API, the CLI and the demo (read only here).
DEFAULT_MODEL_ENV = "UNIVERSEG_PLUS_DEFAULT_MODEL"


def default_model_name() -> str:
    """The model used when none is named: ``$UNIVERSEG_PLUS_DEFAULT_MODEL`` when set, else the best
    registered variant that has pretrained weights.

    "Best" is the highest :attr:`PretrainedEntry.heldout_dice` among table entries named after a
    registered variant (so ``create_model(name, pretrained=True)`` loads them); an entry without a
    figure (``universeg-v1``: not measured here) ranks below every measured one, and ties go to the
    first name in sorted order. When no such entry exists this is ``FALLBACK_MODEL``, which has no weights.

    Raises:
        ValueError: the environment variable names no registered model (lists the valid ones).
    """
    chosen = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    if chosen:
        if chosen not in _MODELS:
            raise ValueError(
                f"{DEFAULT_MODEL_ENV}={chosen!r} is not a registered model; valid names: {', '.join(list_models())}"
            )
        return chosen
    ranked = sorted(
        (entry.heldout_dice is None, -(entry.heldout_dice or 0.0), name)
        for name, entry in PRETRAINED.items()
        if name in _MODELS and entry.model == name
    )
    return ranked[0][2] if ranked else FALLBACK_MODEL


def model_entry(name: str) -> ModelEntry:
    """The registered variant ``name`` (config and description).

    Raises:
        ValueError: unknown name (lists the valid ones).
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return _MODELS[name]


def get_config(name: str, **overrides: Any) -> UniverSegConfig:
    """The config of a registered variant, with field overrides validated.

    Raises:
        ValueError: unknown name (lists the valid ones) or an invalid override.
    """
    base = model_entry(name).config
    if not overrides:
        return base
    unknown = set(overrides) - set(UniverSegConfig.model_fields)
    if unknown:
        raise ValueError(
            f"unknown config field(s) {sorted(unknown)}; valid: {sorted(UniverSegConfig.model_fields)}"
        )
    return UniverSegConfig.model_validate({**base.model_dump(), **overrides})


_V1 = UniverSegConfig()
register_model("universeg-v1", _V1, "Official UniverSeg v1 (Butoi et al., ICCV 2023); loads the official checkpoint.")
register_model(
    "universeg-v1-relu", _V1.model_copy(update={"activation": "relu"}), "v1 with ReLU instead of LeakyReLU."
)
register_model(
    "universeg-v1-gelu", _V1.model_copy(update={"activation": "gelu"}), "v1 with GELU instead of LeakyReLU."
)
register_model(
    "universeg-v1-cross-act",
    _V1.model_copy(update={"cross_activation": "leakyrelu"}),
    "v1 with LeakyReLU after the cross-conv (the paper's formula).",
)
register_model(
    "universeg-v1-no-outconv",
    _V1.model_copy(update={"out_conv": False}),
    "v1 without the final 1x1 conv: the last decoder block's target conv emits the logit.",
)
register_model(
    "universeg-small",
    UniverSegConfig(encoder_blocks=(32, 32, 32, 32)),
    "v1 layout at width 32 (about 4x fewer FLOPs).",
)
register_model(
    "universeg-tiny",
    UniverSegConfig(encoder_blocks=(8, 8, 8), input_size=(32, 32)),
    "Tiny 3-level network for tests and smoke runs (32x32 input).",
)

# ---------------------------------------------------------------------------- pretrained weights
# The official v1 weights are fetched from the authors' release on first use (never redistributed
# here) and checked against the git blob id under which the same file is committed in two unrelated
# public repositories (docs/weights.md). The project's own weights are shipped in weights/; their
# training data include non-commercial (CC BY-NC / BY-NC-SA) and research-only sources, so the
# weights inherit those terms: see weights/<folder>/README.md.
_UNIVERSEG_CITATION = (
    "Butoi, Ortiz, Ma, Sabuncu, Guttag, Dalca. UniverSeg: Universal Medical Image Segmentation. ICCV 2023."
)
register_pretrained(
    "universeg-v1",
    PretrainedEntry(
        model="universeg-v1",
        url="https://github.com/JJGO/UniverSeg/releases/download/weights/universeg_v1_nf64_ss64_STA.pt",
        url_env="UNIVERSEG_PLUS_OFFICIAL_URL",
        size=None,  # not in the public sources; the git blob id commits to it (its header is the size)
        git_blob_id="eedd25b13679d2f06ec4f9b59bcf02fc9205e06b",
        input_size=(128, 128),
        heldout_dice=None,  # not measured here (no internet on the machine that measured universeg-small)
        license="the UniverSeg authors' terms for their released weights (research use; see "
        "https://github.com/JJGO/UniverSeg, README and LICENSE), and the terms of the MegaMedical datasets "
        "they were trained on",
        citation=_UNIVERSEG_CITATION,
    ),
)
register_pretrained(
    "universeg-small",
    PretrainedEntry(
        model="universeg-small",
        local_dir="universeg-small",
        sha256="4f0839532377104a0f2fff0f14b5343ea812ff0d1ce32b5aa2320a800d482af3",
        input_size=(128, 128),
        heldout_dice=0.579,  # weights/universeg-small/README.md: mean over 11 held-out tasks at S=16 (native size)
        license="research use only, non-commercial (inherits CC BY-NC / BY-NC-SA and research-only terms "
        "of its training data)",
        citation="universeg_plus universeg-small weights (trained with universeg_plus); architecture: "
        + _UNIVERSEG_CITATION,
    ),
)

