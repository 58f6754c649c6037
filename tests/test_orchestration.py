"""Orchestration for real: a Prefect server started with ``hmmr server``, deployments from
``hmmr deploy``, a harvest deployment run by a real ``prefect worker`` process on real videos served
over HTTP, a cron schedule, and a Dask harvest that stores exactly the rows of the sequential one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterName,
)

from flows.deploy import DEPLOYMENTS, HELD_OUT_QUERY
from hmmr.cli_orchestration import wait_healthy

from .conftest import REPO, hmmr_env
from .test_harvest_flow import _table_dump, q

HMMR = [sys.executable, "-m", "hmmr.cli"]
DOWNLOAD_LIMITS = {"127.0.0.1": 1}  # the test HTTP server is the one site; one download at a time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def api_url(tmp_path_factory) -> str:
    """A real Prefect server (``hmmr server``) on a free port with its own database."""
    root = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = dict(os.environ, PREFECT_HOME=str(root),
               PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",  # cron runs appear within seconds
               PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS="1")  # retry a full tag limit soon
    proc = _start([*HMMR, "server", "--host", "127.0.0.1", "--port", str(port)], env, root / "server.log")
    url = f"http://127.0.0.1:{port}/api"
    try:
        healthy = wait_healthy(url, proc)
    except RuntimeError as exc:
        pytest.fail(f"{exc}:\n" + (root / "server.log").read_text())
    if not healthy:
        pytest.fail("prefect server did not become healthy:\n" + (root / "server.log").read_text())
    yield url
    _stop(proc)


def _env(home: Path, api_url: str) -> dict:
    return hmmr_env(home) | {"PREFECT_API_URL": api_url, "HMMR_DOWNLOAD_LIMITS": json.dumps(DOWNLOAD_LIMITS)}


@pytest.fixture(scope="module")
def client(api_url):
    with SyncPrefectClient(api_url) as c:
        yield c


@pytest.fixture(scope="module")
def sources(http_base, tmp_path_factory) -> Path:
    """Two short real videos, a text file posing as one and a dead link (failures that must not fail
    the flow run)."""
    path = tmp_path_factory.mktemp("orchestration") / "sources.txt"
    path.write_text("".join(f"{http_base}/{name}\n" for name in
                            ("pose2sim_single_cam01.mp4 #lab", "pose2sim_multi_cam03.mp4", "notes.mp4", "missing.mp4")))
    return path


@pytest.fixture(scope="module")
def deployed(api_url, sources, tmp_path_factory) -> Path:
    """``hmmr deploy`` against the server; returns the data root its deployments write to."""
    home = tmp_path_factory.mktemp("deployed-home")
    out = subprocess.run([*HMMR, "deploy", str(sources), "--home", str(home), "--gpus", "1"], env=_env(home, api_url),
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "deployment harvest/daily" in out.stdout and "tag limit download:127.0.0.1: 1" in out.stdout
    return home


@pytest.fixture(scope="module")
def worker_run(api_url, client, deployed, tmp_path_factory):
    """Trigger harvest/daily through the API; a real ``prefect worker`` process runs it to the end."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = _start([sys.executable, "-m", "prefect", "worker", "start", "--pool", "hmmr-cpu"],
                    _env(deployed, api_url) | {"PREFECT_WORKER_QUERY_SECONDS": "1", "HMMR_TRAIN_AFTER_NEW_TRACKS": "1"}, log)
    try:
        deployment = client.read_deployment_by_name("harvest/daily")
        run = client.create_flow_run_from_deployment(deployment.id)
        deadline = time.time() + 420
        while not (run := client.read_flow_run(run.id)).state.is_final():
            assert worker.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(1)
        # The run's state is final before its process has exited and sent its buffered events
        # (the growth event): stopping the worker now would kill that process with them.
        flow_processes = psutil.Process(worker.pid).children(recursive=True)
        psutil.wait_procs(flow_processes, timeout=60)
    finally:
        _stop(worker)
    return run, log


def test_server_ui_calls_its_own_api(api_url):
    """``hmmr server --port P`` serves the UI with P as its API address (Prefect's default is 4200)."""
    settings = httpx.get(api_url.removesuffix("/api") + "/ui-settings", timeout=10).json()
    assert settings["api_url"] == api_url


def test_deployments_pools_and_download_limits(client, deployed, sources):
    daily = client.read_deployment_by_name("harvest/daily")
    assert daily.work_pool_name == "hmmr-cpu" and daily.enforce_parameter_schema
    assert daily.parameters == {"sources": str(sources), "home": str(deployed), "progress": False}
    assert daily.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    assert [(s.schedule.cron, s.schedule.timezone) for s in daily.schedules] == [("0 3 * * *", "UTC")]
    gpu = client.read_deployment_by_name("harvest/gpu")
    assert gpu.work_pool_name == "hmmr-gpu" and gpu.schedules == []
    assert client.read_work_pool("hmmr-gpu").concurrency_limit == 1
    assert client.read_work_pool("hmmr-cpu").concurrency_limit is None
    tag_limits = {c.tag: c.concurrency_limit for c in client.read_concurrency_limits(limit=100, offset=0)}
    assert tag_limits == {"download:127.0.0.1": 1}  # HMMR_DOWNLOAD_LIMITS replaces the default sites


def _trigger(client, name: str):
    """The one trigger (automation) linked to deployment ``name``, or None."""
    d = client.read_deployment_by_name(name)
    found = client.read_resource_related_automations(f"prefect.deployment.{d.id}")
    assert len(found) <= 1, found
    return found[0] if found else None


def test_train_and_evaluate_deployments_and_their_triggers(client, deployed):
    home, resource = str(deployed), f"hmmr.warehouse.{deployed.resolve()}"
    for name in ("train/when-data-grows", "train/on-demand"):
        d = client.read_deployment_by_name(name)
        assert d.work_pool_name == "hmmr-gpu" and d.parameters == {"home": home, "progress": False} and d.schedules == []
    after = client.read_deployment_by_name("evaluate/after-train")
    assert after.parameters == {"home": home, "checkpoint": "latest"} and after.work_pool_name == "hmmr-gpu"
    nightly = client.read_deployment_by_name("evaluate/nightly")
    assert nightly.parameters == {"home": home, "checkpoint": "latest", "query": HELD_OUT_QUERY}
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [("0 4 * * *", "UTC")]
    grows, trained = _trigger(client, "train/when-data-grows"), _trigger(client, "evaluate/after-train")
    assert grows.trigger.expect == {"hmmr.curated-tracks.grown"} and trained.trigger.expect == {"hmmr.model.trained"}
    assert grows.trigger.match.model_dump() == trained.trigger.match.model_dump() == {"prefect.resource.id": resource}
    assert trained.actions[0].parameters == {"home": home, "checkpoint": "{{ event.payload.checkpoint }}"}
    assert _trigger(client, "train/on-demand") is None and _trigger(client, "evaluate/nightly") is None
    with pytest.raises(Exception, match="'nope' is not of type 'integer'"):  # validated by the train flow's signature
        client.create_flow_run_from_deployment(client.read_deployment_by_name("train/on-demand").id, parameters={"steps": "nope"})


def _runs_of(client, name: str, deadline_s: float = 90) -> list:
    """The flow runs of deployment ``name``, waiting up to ``deadline_s`` for the first."""
    d = client.read_deployment_by_name(name)
    deadline = time.time() + deadline_s
    while not (runs := client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id])))):
        if time.time() > deadline:
            break
        time.sleep(1)
    return runs


def test_harvest_that_grows_the_data_starts_training(worker_run, client, deployed):
    """The worker's harvest (HMMR_TRAIN_AFTER_NEW_TRACKS=1, no model yet) emitted the growth event, and
    its trigger created a run of train/when-data-grows with the deployment's parameters."""
    run, log = worker_run
    deadline = time.time() + 60  # the server stores received events in batches
    while not (events := client.request("POST", "/events/filter", json={
            "filter": {"event": {"name": ["hmmr.curated-tracks.grown"]}}}).json())["events"] and time.time() < deadline:
        time.sleep(1)
    assert events["events"] and events["events"][0]["payload"]["new_tracks"] >= 1, log.read_text()[-3000:]
    runs = _runs_of(client, "train/when-data-grows")
    assert len(runs) == 1 and runs[0].parameters == {"home": str(deployed), "progress": False}


def test_trained_model_event_starts_its_evaluation(api_url, client, deployed):
    """A train run's event (flows.triggers.announce_model, in a process of its own as in a flow run)
    starts evaluate/after-train on the checkpoint the event names."""
    ckpt = deployed / "runs" / "abc" / "last.pt"
    code = ("from pathlib import Path; from hmmr.config import Settings; from flows.triggers import announce_model; "
            f"announce_model(Settings(home=Path({str(deployed)!r})), Path({str(ckpt)!r}))")
    out = subprocess.run([sys.executable, "-c", code], env=_env(deployed, api_url), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    runs = _runs_of(client, "evaluate/after-train")
    assert len(runs) == 1 and runs[0].parameters == {"home": str(deployed), "checkpoint": str(ckpt.resolve())}


def test_run_parameters_are_validated_by_the_flow_signature(client, deployed):
    deployment = client.read_deployment_by_name("harvest/daily")
    with pytest.raises(Exception, match="'many' is not of type 'integer'"):
        client.create_flow_run_from_deployment(deployment.id, parameters={"workers": "many"})


def test_cron_schedule_creates_scheduled_runs(client, deployed):
    deployment = client.read_deployment_by_name("harvest/daily")
    deadline = time.time() + 60
    while True:
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
        scheduled = [r for r in runs if r.state.is_scheduled() and r.auto_scheduled]
        if scheduled or time.time() > deadline:
            break
        time.sleep(1)
    assert scheduled, "the scheduler created no run for the cron schedule"
    times = sorted(r.expected_start_time for r in scheduled)
    assert all((t.hour, t.minute, t.second) == (3, 0, 0) for t in times)
    assert all((b - a).total_seconds() == 86400 for a, b in zip(times, times[1:]))


def test_worker_runs_the_deployment_and_failures_fail_only_their_tasks(worker_run, client, deployed):
    run, log = worker_run
    assert run.state.is_completed(), log.read_text()
    tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    videos = {t.name: t for t in tasks if t.task_key.startswith("harvest_video")}
    stems = ("notes", "pose2sim_multi_cam03", "pose2sim_single_cam01")  # yt-dlp's title of a plain file
    assert sorted(videos) == [f"video {n} [{_video_id(deployed, n)}]" for n in stems]
    state = {name.split()[1]: t.state for name, t in videos.items()}
    assert state["pose2sim_single_cam01"].is_completed() and state["pose2sim_multi_cam03"].is_completed()
    assert state["pose2sim_single_cam01"].message == "ok: 2 tracks kept"
    assert state["notes"].is_failed() and state["notes"].message.startswith("invalid_video: ")
    assert "not a readable video" in state["notes"].message
    probes = {t.name: t.state for t in tasks if t.name.startswith("probe-")}
    assert sorted(s.type.value for s in probes.values()) == ["COMPLETED", "COMPLETED", "FAILED"]
    expand_dead = next(t for t in tasks if t.name == "expand-line-4")
    assert expand_dead.state.is_failed() and "404" in expand_dead.state.message
    downloads = [t for t in tasks if t.name.startswith("download-")]
    assert len(downloads) == 3 and all(t.tags == ["download:127.0.0.1"] for t in downloads)  # the tag with a limit
    rows = {r["source"].rsplit("/", 1)[-1]: r["status"] for r in q(deployed, "SELECT * FROM videos")}
    assert rows == {"pose2sim_single_cam01.mp4": "ok", "pose2sim_multi_cam03.mp4": "ok",
                    "notes.mp4": "invalid_video", "missing.mp4": "download_failed"}
    assert q(deployed, "SELECT count(*) AS n FROM curated_tracks")[0]["n"] >= 4


def _video_id(home: Path, file_stem: str) -> str:
    return q(home, f"SELECT video_id FROM videos WHERE source LIKE '%/{file_stem}.%'")[0]["video_id"]


def test_run_artifacts_summary_progress_and_parquet_links(worker_run, client, deployed):
    run, _ = worker_run
    arts = {a.key: a for a in client.read_artifacts() if a.flow_run_id == run.id}
    assert arts["harvest-progress"].type == "progress" and float(arts["harvest-progress"].data) == 100.0
    md = arts["harvest-summary"].data
    ok = q(deployed, "SELECT sum(max_people) AS people, sum(n_tracks_kept) AS kept FROM videos WHERE status = 'ok'")[0]
    assert f"| ok | 2 | {ok['people']} | {ok['kept']} |" in md
    assert "| download_failed | 1 | 0 | 0 |" in md and "| invalid_video | 1 | 0 | 0 |" in md
    links = [part.split(")")[0] for part in md.split("](file://")[1:]]
    parquet, png = [p for p in links if p.endswith(".parquet")], [p for p in links if p.endswith(".png")]
    assert len(parquet) == 6 and len(png) == 3 and len(links) == 9  # + the dataset plots (flows.plot_artifacts)
    assert all(Path(p).is_file() for p in links) and md.count("](data:image/png;base64,") == 3
    assert "HTTP Error 404" in md


def test_dask_harvest_gives_the_rows_of_the_sequential_run(worker_run, api_url, client, deployed, sources, tmp_path):
    """The same sources harvested by ``hmmr harvest --workers 2`` (a local Dask cluster) against the
    same server: every table row equal to the worker's sequential run, and the videos overlapped."""
    home = tmp_path / "dask-home"
    out = subprocess.run([*HMMR, "harvest", str(sources), "--workers", "2", "--no-progress"], env=_env(home, api_url),
                         cwd=REPO, capture_output=True, text=True, timeout=420)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _table_dump(home) == _table_dump(deployed)
    run_id = q(home, "SELECT any_value(run_id) AS r FROM videos")[0]["r"]
    assert f"run {run_id}" in out.stdout
    tasks = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="video pose2sim")))
    mine = [t for t in tasks if t.flow_run_id != worker_run[0].id]
    assert len(mine) == 2 and all(t.state.is_completed() for t in mine)
    first, second = sorted(mine, key=lambda t: t.start_time)
    assert second.start_time < first.end_time, "the two videos did not run at the same time"


def test_prefect_yaml_deploys_the_same_deployments(api_url, client, deployed, sources):
    """``prefect deploy --all`` with prefect.yaml gives the deployments ``hmmr deploy`` made."""
    fields = ("entrypoint", "pull_steps", "parameters", "work_pool_name", "tags", "description",
              "enforce_parameter_schema")

    def read() -> dict:
        out = {}
        for name in [f"{s.entrypoint.split(':')[1]}/{s.name}" for s in DEPLOYMENTS]:
            d = client.read_deployment_by_name(name)
            trigger = _trigger(client, name)
            out[name] = {f: getattr(d, f) for f in fields} | {
                "schedules": [(s.schedule.cron, s.schedule.timezone) for s in d.schedules],
                "trigger": trigger and (trigger.name, trigger.trigger.expect, trigger.trigger.match.model_dump(), trigger.actions[0].parameters)}
        return out

    before = read()
    env = _env(deployed, api_url) | {"HMMR_SOURCES": str(sources), "PWD": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert read() == before


@pytest.fixture
def dask_scheduler(api_url, tmp_path):
    """An existing Dask cluster: ``dask scheduler`` and ``dask worker`` processes (2 x 1 thread)
    whose environment points at the Prefect server, as on machines one scales out to."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = _env(tmp_path / "unused-home", api_url)
    dask = [sys.executable, "-m", "dask"]
    scheduler = _start([*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], env,
                       tmp_path / "scheduler.log")
    workers = _start([*dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"], env,
                     tmp_path / "workers.log")
    try:
        yield address
    finally:
        _stop(workers)
        _stop(scheduler)


def test_harvest_on_an_existing_dask_cluster(worker_run, api_url, client, deployed, sources, dask_scheduler, tmp_path):
    """``hmmr harvest --dask-address``: the videos run in the cluster's worker processes and store the
    rows of the sequential run."""
    home = tmp_path / "cluster-home"
    out = subprocess.run([*HMMR, "harvest", str(sources), "--dask-address", dask_scheduler, "--no-progress"],
                         env=_env(home, api_url), cwd=REPO, capture_output=True, text=True, timeout=420)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _table_dump(home) == _table_dump(deployed)
    assert "processed {'download_failed': 1, 'invalid_video': 1, 'ok': 2}" in out.stdout
