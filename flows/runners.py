"""Where the videos of a harvest run in parallel: a Dask cluster, through ``prefect_dask``.

By default a ``distributed.LocalCluster`` of ``workers`` workers of one thread each, inside the flow's
own process; or an existing Dask scheduler at ``address`` to scale out to many machines, whose workers
need ``PREFECT_API_URL`` (and ``HMMR_*``) in their own environment and the hmmr package installed.

Why threads and not processes on one machine (8 videos, 2 cores, benchmarks/orchestration.py): the
pose model runs in LiteRT, which releases the GIL (two videos in two threads of one process take as
long as in two processes, 12.1 s / 9.7 s vs 11.4 s / 8.8 s), while each worker process costs start-up
(spawn, imports of Prefect, LiteRT, DuckDB: ~5 s before its first video) and ~25 % more CPU per frame
under Dask's process defaults (``MALLOC_TRIM_THRESHOLD_`` turns off glibc's dynamic mmap threshold,
so every decoded frame is mapped and zero-filled again; the statistical profiler samples every
10 ms). One hour, one machine, the 8 videos with the ephemeral server's start: sequential 99.0 s,
two worker processes 79.3 s (with both defaults off; 100 s with them), two threads 69.8 s.
The profiler is off for the thread workers too (:data:`LOCAL_WORKER_CONFIG`): it takes the GIL to
sample their stacks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import dask
from prefect_dask import DaskTaskRunner

LOCAL_WORKER_CONFIG = {"distributed.worker.profile.enabled": False}


@contextmanager
def dask_runner(*, workers: int, address: str | None = None) -> Iterator[DaskTaskRunner]:
    """A started Dask task runner: on the scheduler at ``address``, or on a new local cluster of
    ``workers`` one-thread workers in this process (started with :data:`LOCAL_WORKER_CONFIG`,
    closed on exit)."""
    with ExitStack() as stack:
        if address:
            yield stack.enter_context(DaskTaskRunner(address=address))
            return
        runner = stack.enter_context(DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": max(1, workers), "threads_per_worker": 1, "processes": False,
                            "dashboard_address": None, "silence_logs": logging.WARNING},
        ))
        with dask.config.set(LOCAL_WORKER_CONFIG):  # read by the workers as the cluster starts
            runner.client  # noqa: B018  (the cluster starts on the runner's first use of its client)
        yield runner
