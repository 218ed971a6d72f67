"""Ray, imported only when a dataset run needs it: a local instance on 127.0.0.1, or an existing cluster.

:func:`ray_session` yields the ``ray`` module with a connection open. Without ``address`` it starts
a private local instance bound to 127.0.0.1 (no dashboard, no usage statistics) and shuts it down on
exit; with ``address`` (``"auto"``, ``"ray://head:10001"``, ``"host:6379"``) it connects to a running
cluster and only disconnects. When this process is already connected (``ray.init`` called by the
user), that connection is used and left open.

Priority of a local instance's workers: Ray lowers its worker processes to niceness 15 by default
(so that its own daemons stay responsive on a dedicated node). On a shared machine that starves
them: Linux schedules the processes of one session (one terminal, one CI job: an "autogroup")
against each other by niceness, so next to a few CPU-bound jobs at niceness 0 a worker at 15 gets
about 36/1024 of their share: its actors took minutes to start, and a 21-input run that takes 20 s
had not finished after 300 s (docs/cluster.md, "On a busy machine"). The workers of a local
instance are the computation, not background help, so they keep the driver's niceness
(``RAY_worker_niceness=0``: Ray adds nothing), as ``universeg-plus segment`` would run; a value set
in the environment is respected. A cluster's own setting is left alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from ..io.optional import require

__all__ = ["LOCAL_ONLY_ENV", "WORKER_NICENESS_ENV", "import_ray", "ray_session"]

log = logging.getLogger(__name__)

#: Ray's switch for multi-node mode, read at ``import ray``; "0" keeps a local instance on 127.0.0.1.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Ray's setting of the niceness its worker processes add to their own (default 15), read by the
#: processes a local instance starts (its raylet passes its environment on to the workers).
WORKER_NICENESS_ENV = "RAY_worker_niceness"


def import_ray() -> Any:
    """``import ray`` (with Ray Data), or ImportError naming the extra to install."""
    return require("ray", "ray.data", purpose="segmenting a dataset on Ray needs ray[data]", extra="cluster")


def _cluster_mode() -> bool:
    try:
        from ray._private import ray_constants
    except ImportError:  # a Ray without this module: nothing to warn about
        return False
    return bool(getattr(ray_constants, "ENABLE_RAY_CLUSTER", False))


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """``name=value`` in this process's environment for the block, unless it is set already."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration of the block (see the module docstring).

    Args:
        address: ``None`` for a local instance on 127.0.0.1, else a Ray address.
        num_cpus / num_gpus: Resources of a local instance (default: what Ray detects); refused
            with ``address``, where the cluster's own resources apply.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is None:
        # Single-node mode (Ray's default on macOS/Windows): every Ray process binds 127.0.0.1, not the
        # machine's address (ray.init turns _node_ip_address="127.0.0.1" into that address otherwise).
        # Read when ray is first imported, and inherited by the Ray processes started here.
        os.environ.setdefault(LOCAL_ONLY_ENV, "0")
    ray = import_ray()
    if ray.is_initialized():
        log.info("using this process's Ray connection")
        yield ray
        return
    if address is not None and (num_cpus is not None or num_gpus is not None):
        raise ValueError("num_cpus/num_gpus size a local Ray instance; a cluster at an address has its own")
    if address is None:
        if _cluster_mode():
            log.warning(
                "ray was imported before %s=0 was set: the local Ray instance listens on this machine's address, "
                "not only on 127.0.0.1", LOCAL_ONLY_ENV,
            )
        log.info("starting a local Ray instance on 127.0.0.1")
        with _environ(WORKER_NICENESS_ENV, "0"):  # the workers at the driver's priority (module docstring)
            ray.init(
                address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                _node_ip_address="127.0.0.1", log_to_driver=False, logging_level=logging.WARNING,
            )
    else:
        log.info("connecting to the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()
