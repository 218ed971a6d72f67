"""Public task folders: build ``<task>/{images,masks}/*.png`` + ``meta.json`` from public sources.

The manifest (``manifest.json``) names, for every task of the project's training/validation
collection, where its data comes from (a GitHub repository at a commit and the file paths, a PyPI
wheel or a Debian package with its sha256), the licence, label names, caveats and the recipe that
turns the source files into task folders; :func:`build_tasks` downloads and builds them
(``universeg-plus build-tasks``).
"""

from .build import TaskReport, build_tasks
from .fetch import DEFAULT_MIRRORS, Fetcher
from .manifest import load_manifest, task_names

__all__ = ["DEFAULT_MIRRORS", "Fetcher", "TaskReport", "build_tasks", "load_manifest", "task_names"]
