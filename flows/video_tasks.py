"""The per-video tasks of the ``harvest`` flow: download -> probe -> 2D pose -> tracks -> store.

``harvest_video`` runs one video through them and stores its rows (or its failure) in one
transaction. Kept apart from :mod:`flows.harvest` (the flow, its report and triggers) so that a
worker process of a Dask cluster (``--dask-address``), which imports this module to run
``harvest_video``, loads only what a video needs and not the report's plotting stack (matplotlib,
torch): importing this module takes 2.6 s on 2 cores, ``flows.harvest`` 5.9 s.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from prefect import get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run as current_task_run
from prefect.states import Completed, Failed, State

from hmmr.config import Settings
from pose_harvest import download as dl
from pose_harvest import sources as src
from pose_harvest.detections import DecodeError, VideoDetections, detect_video
from pose_harvest.detectors import DetectorError, get_detector
from pose_harvest.tracks import TrackedVideo, track_and_curate
from pose_harvest.video import InvalidVideo, ProbeResult, probe
from warehouse import harvest_tables
from warehouse.lake import Lake

TRANSIENT_RETRY_DELAYS = [2, 10, 30]


def _retry_if_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry downloads only when the error may go away (5xx, 429, timeout)."""
    try:
        state.result()
    except dl.DownloadFailed as exc:
        return exc.transient
    except Exception:
        return False
    return False


@task(
    name="download",
    cache_policy=NO_CACHE,
    retries=len(TRANSIENT_RETRY_DELAYS),
    retry_delay_seconds=TRANSIENT_RETRY_DELAYS,
    retry_condition_fn=_retry_if_transient,
    task_run_name="download-{ref.video_id}",
)
def download_video(ref: src.VideoRef, settings: Settings, cfg: dl.DownloadConfig) -> dl.Downloaded:
    return dl.download(ref.url, ref.video_id, settings.raw_dir, settings.download_archive, cfg)


def limited_download_tags() -> frozenset[str]:
    """The tags ``download`` and ``download:<site>`` that have a Prefect tag concurrency limit (the
    per-site limits of ``hmmr deploy``), read once per harvest run: a limit created later applies
    from the next run."""
    tags: set[str] = set()
    with get_client(sync_client=True) as client:
        while page := client.read_concurrency_limits(limit=200, offset=len(tags)):  # the API's largest page
            tags.update(c.tag for c in page)
    return frozenset(t for t in tags if t == "download" or t.startswith("download:"))


def _download(ref: src.VideoRef, settings: Settings, cfg: dl.DownloadConfig, limited: frozenset[str]) -> dl.Downloaded:
    """``download_video`` tagged with its site (``download:youtube.com``) when that site has a limit
    (``limited``), so the per-site tag concurrency limits that ``hmmr deploy`` creates keep a site
    from being hammered. A tag without a limit is left off: Prefect asks the API for a slot of every
    tag of a task run, and with no limit on the tag that took about 2 s per download here (most of a
    local clip's harvest time besides the pose model)."""
    tags = {"download", f"download:{src.site_of(ref.url)}"} & limited
    return (download_video.with_options(tags=tags) if tags else download_video)(ref, settings, cfg)


@task(name="probe", cache_policy=NO_CACHE, task_run_name="probe-{video_id}")
def probe_video(video_id: str, path: Path) -> ProbeResult:
    return probe(path)


@task(name="detect-poses", cache_policy=NO_CACHE, task_run_name="detect-{video_id}")
def detect_poses(video_id: str, path: Path, info: ProbeResult, detector: str, fps: float | None,
                 progress: bool) -> VideoDetections:
    return detect_video(path, info, get_detector(detector), fps=fps, desc=video_id, progress=progress)


@task(name="track-and-curate", cache_policy=NO_CACHE, task_run_name="track-{video_id}")
def track_video(video_id: str, dets: VideoDetections) -> TrackedVideo:
    return track_and_curate(dets)


@task(name="store", cache_policy=NO_CACHE, task_run_name="store-{video_id}")
def store_video(video_id: str, row: dict, tables: dict, settings: Settings) -> None:
    with Lake(settings=settings) as lake:
        lake.write_video(row, tables)


def error_text(exc: BaseException) -> str:
    """The message of ``exc`` for a status row: its text (or its type's name), at most ~2000 characters."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 2000 else text[:2000] + " ..."


def _harvest_one(ref: src.VideoRef, base_row: dict, settings: Settings, *, detector: str,
                 fps: float | None, download_cfg: dl.DownloadConfig, limited_tags: frozenset[str],
                 progress: bool) -> dict:
    """Run one video through every stage; store its rows (or its failure) in one transaction.
    Returns the stored ``videos`` row."""
    row = dict(base_row)
    tables: dict = {}
    try:
        got = _download(ref, settings, download_cfg, limited_tags)
        row.update(raw_path=str(got.path), sha256=got.sha256, size_bytes=got.size_bytes,
                   extractor=got.info.get("extractor_key") or got.info.get("extractor"))
        info = probe_video(ref.video_id, got.path)
        row.update(harvest_tables.probe_columns(info))
        dets = detect_poses(ref.video_id, got.path, info, detector, fps, progress)
        tracked = track_video(ref.video_id, dets)
        row.update(harvest_tables.summary_columns(dets, tracked))
        tables = harvest_tables.video_tables(ref.video_id, dets, tracked)
        row["status"] = "ok" if row["n_detections"] else "no_people"
        if row["status"] == "no_people":
            row["error"] = f"no person detected in {dets.n_frames} frames"
    except dl.DownloadFailed as exc:
        row.update(status="download_failed", error=error_text(exc))
    except (InvalidVideo, DecodeError) as exc:
        row.update(status="invalid_video", error=error_text(exc))
    except DetectorError as exc:  # the pose backend could not run (e.g. OpenPose without Docker)
        row.update(status="detector_failed", error=error_text(exc))
    except Exception as exc:  # anything else: keep going, record it with the traceback's last line
        get_run_logger().error("video %s failed:\n%s", ref.video_id, traceback.format_exc())
        row.update(status="failed", error=f"{type(exc).__name__}: {error_text(exc)}")
        tables = {}
    store_video(ref.video_id, row, tables, settings)
    return row


OK_STATUSES = ("ok", "no_people")  # a video without people is a result, not a failure


def _video_run_name() -> str:
    """Task run name of a video in the UI: its title or file name, then its id."""
    ref: src.VideoRef = current_task_run.parameters["ref"]
    label = ref.title or Path(ref.url.split("?", 1)[0]).name or ref.url
    return f"video {label[:60]} [{ref.video_id}]"


@task(name="harvest-video", cache_policy=NO_CACHE, task_run_name=_video_run_name)
def harvest_video(ref: src.VideoRef, base_row: dict, settings: Settings, detector: str, fps: float | None,
                  download_cfg: dl.DownloadConfig, limited_tags: frozenset[str], progress: bool) -> State:
    """One video end to end. Ends Failed, with the status and error as its message, when the video
    could not be harvested (its status row is stored either way), so the UI shows what went wrong."""
    row = _harvest_one(ref, base_row, settings, detector=detector, fps=fps, download_cfg=download_cfg,
                       limited_tags=limited_tags, progress=progress)
    if row["status"] in OK_STATUSES:
        return Completed(message=f"{row['status']}: {row['n_tracks_kept']} tracks kept", data=row["status"])
    return Failed(message=f"{row['status']}: {row['error']}", data=row["status"])
