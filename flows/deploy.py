"""Deployments, work pools and concurrency limits on a Prefect server: what ``hmmr deploy`` applies.

* Work pools: ``hmmr-cpu`` (``process``, for harvesting on CPUs) and ``hmmr-gpu`` (``process``, its
  concurrency limit is the number of GPUs: one flow run per GPU at a time).
* Tag concurrency limits ``download:<site>`` from ``Settings.download_limits``: the harvest tags each
  download of such a site with it (``flows.video_tasks.limited_download_tags``), so at most that
  many downloads from one site run at once, across all runs.
* Deployments (:data:`DEPLOYMENTS`):
  - ``harvest/daily`` (cron, CPU pool, over a sources file; each run harvests only what is new, since
    the flow skips finished videos) and ``harvest/gpu`` (no schedule, GPU pool, for a GPU detector);
  - ``train/when-data-grows`` (GPU pool), triggered by the event a harvest emits when the curated data
    has grown by ``Settings.train_after_new_tracks`` kept tracks since the last model
    (:mod:`flows.triggers`), and ``train/on-demand`` (GPU pool, no schedule);
  - ``evaluate/after-train`` (GPU pool), triggered by the event each train run emits, on the checkpoint
    it names; ``evaluate/nightly`` (cron 04:00, GPU pool) scores the newest model on the held-out
    tracks: those of videos tagged ``split=test`` (a ``split=test`` tag on a sources line).

Parameters are validated against the flow signature by the server, when a deployment is created and
when a run is asked for. Each deployment loads the flow from this checkout (``set_working_directory``
pull step), so a worker on this machine, or a container with the repository at the same path, runs it.
Triggers are Prefect automations linked to their deployment, matched on the warehouse's resource id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from prefect.workers.process import ProcessWorker

from flows import triggers
from hmmr.config import Settings

REPO = Path(__file__).resolve().parents[1]
CPU_POOL = "hmmr-cpu"
GPU_POOL = "hmmr-gpu"
DEFAULT_CRON = "0 3 * * *"  # daily, 03:00 in DEFAULT_TIMEZONE
DEFAULT_TIMEZONE = "UTC"


HELD_OUT_QUERY = "SELECT video_id, track_id FROM curated_tracks WHERE json_extract_string(tags, '$.split') = 'test'"
NIGHTLY_CRON = "0 4 * * *"  # evaluate/nightly, after the 03:00 harvest


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of a flow of this repository.

    entrypoint: ``path/to/module.py:flow_function`` relative to the repository root.
    shared: which of the common parameters (``sources``, ``home``, ``progress``) the flow takes.
    scheduled: whether the cron schedule given to :func:`apply_deployments` applies to it.
    cron: a fixed schedule of its own (``scheduled`` is then ignored).
    parameters: defaults baked into the deployment (a run may override them).
    trigger: an event name (:mod:`flows.triggers`) whose emission for this warehouse starts a run;
    trigger_parameters: run parameters rendered from the event (Jinja, e.g. ``{{ event.payload.x }}``).
    """

    name: str
    entrypoint: str
    pool: str
    description: str
    shared: tuple[str, ...] = ("home", "progress")
    scheduled: bool = False
    cron: str | None = None
    parameters: dict = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    trigger: str | None = None
    trigger_parameters: dict = field(default_factory=dict)


DEPLOYMENTS = (
    DeploymentSpec(
        name="daily", entrypoint="flows/harvest.py:harvest", pool=CPU_POOL, scheduled=True, shared=("sources", "home", "progress"),
        description="Harvest the sources file on a schedule; videos already harvested are skipped.",
        tags=("harvest", "cpu"),
    ),
    DeploymentSpec(
        name="gpu", entrypoint="flows/harvest.py:harvest", pool=GPU_POOL, shared=("sources", "home", "progress"),
        description="Harvest on demand on the GPU pool (pass detector=... for a GPU pose model).",
        tags=("harvest", "gpu"),
    ),
    DeploymentSpec(
        name="when-data-grows", entrypoint="flows/train.py:train", pool=GPU_POOL, trigger=triggers.DATA_GROWN,
        description="Train a new model when a harvest has added HMMR_TRAIN_AFTER_NEW_TRACKS kept tracks since the last one.",
        tags=("train", "gpu"),
    ),
    DeploymentSpec(
        name="on-demand", entrypoint="flows/train.py:train", pool=GPU_POOL,
        description="Train on demand (parameters query, steps, single_frame, config, ...).",
        tags=("train", "gpu"),
    ),
    DeploymentSpec(
        name="after-train", entrypoint="flows/evaluate.py:evaluate", pool=GPU_POOL, shared=("home",),
        parameters={"checkpoint": "latest"}, trigger=triggers.MODEL_TRAINED,
        trigger_parameters={"checkpoint": "{{ event.payload.checkpoint }}"},
        description="Evaluate each newly trained checkpoint on the curated tracks.",
        tags=("evaluate", "gpu"),
    ),
    DeploymentSpec(
        name="nightly", entrypoint="flows/evaluate.py:evaluate", pool=GPU_POOL, shared=("home",), cron=NIGHTLY_CRON,
        parameters={"checkpoint": "latest", "query": HELD_OUT_QUERY},
        description="Evaluate the newest model every night on the held-out tracks (videos tagged split=test).",
        tags=("evaluate", "gpu"),
    ),
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
    """Create or update the deployments of ``specs`` over ``sources`` with data under ``home``
    (and their triggers, as automations linked to them)."""
    shared = {"sources": str(sources.resolve()), "home": str(home.resolve()), "progress": False}
    resource = triggers.resource_id(Settings(home=home))
    ids = {}
    for spec in specs:
        flow = Flow.from_source(source=str(REPO), entrypoint=spec.entrypoint)
        parameters = {k: shared[k] for k in spec.shared} | spec.parameters
        schedule = spec.cron or (cron if spec.scheduled else None)
        deployment = flow.to_deployment(
            name=spec.name, description=spec.description, parameters=parameters, tags=list(spec.tags),
            work_pool_name=spec.pool, schedules=[Cron(schedule, timezone=timezone)] if schedule else None,
            triggers=[DeploymentEventTrigger(
                name=f"{flow.name}/{spec.name}: on {spec.trigger}", expect={spec.trigger},
                match={"prefect.resource.id": resource}, parameters=parameters | spec.trigger_parameters,
            )] if spec.trigger else None,
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
