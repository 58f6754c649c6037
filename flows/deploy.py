"""Deployments, work pools and concurrency limits on a Prefect server: what ``hmmr deploy`` applies.

* Work pools: ``hmmr-cpu`` (``process``, for harvesting on CPUs) and ``hmmr-gpu`` (``process``, its
  concurrency limit is the number of GPUs: one flow run per GPU at a time).
* Tag concurrency limits ``download:<site>`` from ``Settings.download_limits``: the harvest tags every
  download with its site, so at most that many downloads from one site run at once, across all runs.
* Deployments (:data:`DEPLOYMENTS`): ``harvest/daily`` (cron, on the CPU pool, over a sources file;
  each run harvests only what is new, since the flow skips finished videos) and ``harvest/gpu`` (no
  schedule, on the GPU pool, for a GPU detector run on demand).

Parameters are validated against the flow signature by the server, when a deployment is created and
when a run is asked for. Each deployment loads the flow from this checkout (``set_working_directory``
pull step), so a worker on this machine, or a container with the repository at the same path, runs it.

``train`` and ``evaluate`` deployments go into :data:`DEPLOYMENTS` when ``flows/train.py`` and
``flows/evaluate.py`` exist (train: on the GPU pool, triggered when the curated data has grown;
evaluate: after each train and nightly). They do not exist yet, so nothing is deployed for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from prefect.workers.process import ProcessWorker

from hmmr.config import Settings

REPO = Path(__file__).resolve().parents[1]
CPU_POOL = "hmmr-cpu"
GPU_POOL = "hmmr-gpu"
DEFAULT_CRON = "0 3 * * *"  # daily, 03:00 in DEFAULT_TIMEZONE
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of a flow of this repository.

    entrypoint: ``path/to/module.py:flow_function`` relative to the repository root.
    scheduled: whether the cron schedule given to :func:`apply_deployments` applies to it.
    parameters: defaults baked into the deployment (a run may override them).
    """

    name: str
    entrypoint: str
    pool: str
    description: str
    scheduled: bool = False
    parameters: dict = field(default_factory=dict)
    tags: tuple[str, ...] = ()


DEPLOYMENTS = (
    DeploymentSpec(
        name="daily", entrypoint="flows/harvest.py:harvest", pool=CPU_POOL, scheduled=True,
        description="Harvest the sources file on a schedule; videos already harvested are skipped.",
        tags=("harvest", "cpu"),
    ),
    DeploymentSpec(
        name="gpu", entrypoint="flows/harvest.py:harvest", pool=GPU_POOL,
        description="Harvest on demand on the GPU pool (pass detector=... for a GPU pose model).",
        tags=("harvest", "gpu"),
    ),
    # train / evaluate: add their DeploymentSpec here when flows/train.py and flows/evaluate.py land.
)


@dataclass(frozen=True)
class Deployed:
    """What :func:`apply_all` created or updated: deployment ids by ``flow/deployment`` name,
    work pool concurrency limits and download limits by tag."""

    deployments: dict[str, UUID]
    pools: dict[str, int | None]
    download_limits: dict[str, int]


def apply_work_pools(*, gpus: int) -> dict[str, int | None]:
    """Create or update the CPU pool (no limit) and the GPU pool (``gpus`` runs at once)."""
    limits = {CPU_POOL: None, GPU_POOL: max(1, gpus)}
    with get_client(sync_client=True) as client:
        for name, limit in limits.items():
            try:
                client.read_work_pool(name)
            except ObjectNotFound:
                client.create_work_pool(WorkPoolCreate(
                    name=name, type="process", concurrency_limit=limit,
                    base_job_template=ProcessWorker.get_default_base_job_template()))
            else:
                client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=limit))
    return limits


def apply_download_limits(limits: dict[str, int]) -> dict[str, int]:
    """Create or update the tag concurrency limit ``download:<site>`` for every site in ``limits``."""
    tagged = {f"download:{site}": int(n) for site, n in limits.items()}
    with get_client(sync_client=True) as client:
        for tag, n in tagged.items():
            client.create_concurrency_limit(tag=tag, concurrency_limit=n)
    return tagged


def apply_deployments(*, sources: Path, home: Path, cron: str = DEFAULT_CRON,
                      timezone: str = DEFAULT_TIMEZONE, specs=DEPLOYMENTS) -> dict[str, UUID]:
    """Create or update the deployments of ``specs`` over ``sources`` with data under ``home``."""
    ids = {}
    for spec in specs:
        flow = Flow.from_source(source=str(REPO), entrypoint=spec.entrypoint)
        parameters = {"sources": str(sources.resolve()), "home": str(home.resolve()), "progress": False,
                      **spec.parameters}
        deployment = flow.to_deployment(
            name=spec.name, description=spec.description, parameters=parameters, tags=list(spec.tags),
            work_pool_name=spec.pool, schedules=[Cron(cron, timezone=timezone)] if spec.scheduled else None,
        )
        ids[f"{flow.name}/{spec.name}"] = deployment.apply()
    return ids


def apply_all(*, sources: Path, settings: Settings, gpus: int, cron: str = DEFAULT_CRON,
              timezone: str = DEFAULT_TIMEZONE) -> Deployed:
    """Work pools, download limits and deployments, in that order (deployments name their pool)."""
    pools = apply_work_pools(gpus=gpus)
    limits = apply_download_limits(settings.download_limits)
    ids = apply_deployments(sources=sources, home=settings.home, cron=cron, timezone=timezone)
    return Deployed(deployments=ids, pools=pools, download_limits=limits)
