"""Talking to the Hugging Face Hub: file download with actionable errors, and publishing."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .files import SHA256_SUFFIX
from .folder import WeightsModel, save_pretrained

__all__ = ["HubFile", "PushResult", "download_file", "push_to_hub"]

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _require_hub() -> None:
    """Raise an ImportError naming the package when huggingface_hub is missing.

    Callers then import what they use by name (``from huggingface_hub import constants``):
    huggingface_hub loads its submodules lazily, so ``huggingface_hub.constants`` is only an
    attribute once something has imported it.
    """
    try:
        import huggingface_hub  # noqa: F401
    except ImportError as exc:
        raise ImportError('Hugging Face Hub access needs huggingface_hub: pip install "huggingface-hub>=0.24"') from exc


@dataclass(frozen=True)
class HubFile:
    """A file fetched from (or found in the cache of) a hub repo.

    Attributes:
        path: Local path in the huggingface_hub cache.
        commit: The 40-hex commit it was resolved to (``None`` if unknown).
        lfs_sha256: The SHA-256 the hub published for it (Git LFS object id), ``None`` for non-LFS files.
    """

    path: Path
    commit: str | None
    lfs_sha256: str | None


def download_file(
    repo_id: str,
    filename: str,
    revision: str = "main",
    *,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    token: str | bool | None = None,
) -> HubFile:
    """Fetch one file of a model repo through the huggingface_hub cache.

    Honours ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE``; a file pinned to a commit
    that is already cached is returned without any request.

    Raises:
        FileNotFoundError: repo, revision or file not on the hub, or offline and not cached.
        ValueError: malformed repo id.
        RuntimeError: any other hub error (names the status).
    """
    _require_hub()
    from huggingface_hub import constants, errors, hf_hub_download
    from huggingface_hub.utils import HFValidationError

    where = f"hub repo {repo_id!r} (revision {revision!r}, endpoint {constants.ENDPOINT})"
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            force_download=force_download,
            token=token,
            library_name="universeg_plus",
        )
    except errors.RepositoryNotFoundError:
        raise FileNotFoundError(
            f"{where} was not found: check the id; a private or gated repo needs a token (`hf auth login`)"
        ) from None
    except errors.RevisionNotFoundError:
        raise FileNotFoundError(f"revision {revision!r} does not exist in {where}") from None
    except errors.RemoteEntryNotFoundError:
        raise FileNotFoundError(f"file {filename!r} does not exist in {where}") from None
    except errors.LocalEntryNotFoundError as exc:
        if local_files_only:
            why = "local_files_only=True"
        elif constants.is_offline_mode():
            why = "offline mode is on (HF_HUB_OFFLINE=1)"
        else:
            why = f"the hub could not be reached ({exc.__cause__ or exc})"
        cache = cache_dir or constants.HF_HUB_CACHE
        raise FileNotFoundError(
            f"{filename!r} from {where} is not in the local cache ({cache}) and {why}; download it once while "
            "online (`universeg-plus download`) or point UNIVERSEG_PLUS_WEIGHTS_DIR at a folder holding it"
        ) from None
    except HFValidationError as exc:
        raise ValueError(f"invalid hub repo id {repo_id!r}: {exc}") from None
    except errors.HfHubHTTPError as exc:
        raise RuntimeError(f"downloading {filename!r} from {where} failed: {exc}") from None
    path = Path(path)
    commit = path.parent.name if _COMMIT.fullmatch(path.parent.name) else None
    blob = Path(os.path.realpath(path)).name  # the cache names blobs by their hub ETag (sha256 for LFS files)
    return HubFile(path, commit, blob if _SHA256.fullmatch(blob) else None)


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_to_hub` published.

    Attributes:
        repo_id: The hub repo.
        commit: The new commit's id (pin it as ``revision``).
        commit_url: Link to the commit.
        sha256: SHA-256 of the uploaded ``model.safetensors``.
    """

    repo_id: str
    commit: str
    commit_url: str
    sha256: str


def push_to_hub(
    model: WeightsModel,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str = "Upload universeg_plus weights",
    model_card: str | None = None,
) -> PushResult:
    """Publish ``model`` (config.json + model.safetensors + README.md) to a hub model repo.

    Creates the repo if needed, writes the folder with :func:`save_pretrained` into a temp dir
    and uploads it as one commit, without the ``.sha256`` sidecar: the hub publishes the
    weights' SHA-256 itself (the Git LFS object id), and downloads are checked against that.
    """
    _require_hub()
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory(prefix="universeg_plus_push_") as tmp:
        saved = save_pretrained(model, tmp, model_card=model_card)
        info = api.upload_folder(
            repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message, repo_type="model",
            ignore_patterns=[f"*{SHA256_SUFFIX}"],
        )
    log.info("pushed %s to %s at commit %s", saved.weights.name, repo_id, info.oid)
    return PushResult(repo_id, info.oid, info.commit_url, saved.sha256)
