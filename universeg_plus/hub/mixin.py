"""``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` as methods of the network class.

huggingface_hub's ``PyTorchModelHubMixin`` pattern: the class that inherits the mixin is handed to
the hub functions as ``cls`` (or ``self``), so the hub builds it without importing it and the
imports point one way: ``config``/``registry``/``io`` < ``hub`` < ``model``.
"""

from __future__ import annotations

import os
from typing import Any

from .download import PushResult, push_to_hub
from .folder import SavedWeights, save_pretrained
from .pretrained import from_pretrained

__all__ = ["PretrainedMixin"]


class PretrainedMixin:
    """Adds the pretrained-weights methods to a network class built as ``cls(config, mode=mode)``."""

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, revision: str | None = None, **kwargs: Any) -> Any:
        """A network with weights, from a saved folder, a pretrained-table name or a hub repo id ``"org/repo"``.

        ``UniverSegPlus.from_pretrained("universeg-v1")`` downloads the official UniverSeg weights
        once (verified, converted to safetensors in the user cache) and loads them offline afterwards.
        Keyword arguments (``sha256``, ``mode``, ``cache_dir``, ``local_files_only``,
        ``force_download``, ``token``) and errors: :func:`universeg_plus.hub.pretrained.from_pretrained`.
        """
        return from_pretrained(source, revision, model_cls=cls, **kwargs)

    def save_pretrained(
        self, directory: str | os.PathLike, model_card: str | None = None, overwrite: bool = False
    ) -> SavedWeights:
        """Write ``config.json`` + ``model.safetensors`` (+ ``.sha256``) + ``README.md`` into ``directory``."""
        return save_pretrained(self, directory, model_card=model_card, overwrite=overwrite)

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> PushResult:
        """Publish to a hub model repo; see :func:`universeg_plus.hub.download.push_to_hub`."""
        return push_to_hub(self, repo_id, **kwargs)
