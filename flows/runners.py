"""Where the videos of a harvest run in parallel: a Dask cluster, through ``prefect_dask``.

``workers`` processes of a local ``distributed.LocalCluster`` (one thread each: the pose model is
CPU-bound), or an existing Dask scheduler at ``address`` to scale out to many machines. The task runs
report to the same Prefect API as the flow run; the workers of an existing cluster need
``PREFECT_API_URL`` (and ``HMMR_*``) set in their own environment and the hmmr package installed.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext
from prefect_dask import DaskTaskRunner


def _api_env() -> dict[str, str]:
    """PREFECT_API_URL of the running flow, so local Dask workers use the same API (also an
    ephemeral one, which they would otherwise each start on their own)."""
    ctx = FlowRunContext.get()
    url = ctx.client.api_url if ctx and ctx.client else None
    return {"PREFECT_API_URL": str(url).rstrip("/")} if url else {}


def dask_runner(*, workers: int, address: str | None = None) -> DaskTaskRunner:
    """A Dask task runner: ``address`` of a running scheduler, or a new local cluster of ``workers``."""
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": max(1, workers), "threads_per_worker": 1, "processes": True,
                        "dashboard_address": None, "silence_logs": logging.WARNING, "env": _api_env()},
    )
