"""The ``harvest`` flow: sources -> download -> probe -> 2D pose -> tracks -> curation -> lakehouse.

Thin on purpose: every task wraps one plain function of ``pose_harvest`` or ``warehouse``. Each video
is one ``harvest-video`` task run (download, probe, detect, track and store are its child task runs).
A failure of one video (dead link, not a video) becomes that video's status row and a failed
``harvest-video`` run with the reason in the UI; the flow goes on with the other videos and completes.
Every video commits in one transaction, so a killed run resumes where it stopped and never duplicates
rows. Videos run one after another by default, or in parallel on Dask (``workers``/``dask_address``).
"""

from __future__ import annotations

import traceback
import uuid
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import task_run as current_task_run
from prefect.states import Completed, Failed, State
from tqdm import tqdm
from yt_dlp.utils import YoutubeDLError

from flows import harvest_report, triggers
from flows.runners import dask_runner
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


@task(name="expand-source", cache_policy=NO_CACHE, task_run_name="expand-line-{entry.line}")
def expand_source(entry: src.SourceEntry) -> list[src.VideoRef]:
    return src.expand(entry)


@task(
    name="download",
    cache_policy=NO_CACHE,
    retries=len(TRANSIENT_RETRY_DELAYS),
    retry_delay_seconds=TRANSIENT_RETRY_DELAYS,
    retry_condition_fn=_retry_if_transient,
    task_run_name="download-{ref.video_id}",
    tags=["download"],
)
def download_video(ref: src.VideoRef, settings: Settings, cfg: dl.DownloadConfig) -> dl.Downloaded:
    return dl.download(ref.url, ref.video_id, settings.raw_dir, settings.download_archive, cfg)


def _download(ref: src.VideoRef, settings: Settings, cfg: dl.DownloadConfig) -> dl.Downloaded:
    """``download_video`` tagged with its site (``download:youtube.com``), so the per-site tag
    concurrency limits that ``hmmr deploy`` creates keep a site from being hammered."""
    tags = {"download", f"download:{src.site_of(ref.url)}"}
    return download_video.with_options(tags=tags)(ref, settings, cfg)


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


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 2000 else text[:2000] + " ..."


def _harvest_one(ref: src.VideoRef, base_row: dict, settings: Settings, *, detector: str,
                 fps: float | None, download_cfg: dl.DownloadConfig, progress: bool) -> dict:
    """Run one video through every stage; store its rows (or its failure) in one transaction.
    Returns the stored ``videos`` row."""
    row = dict(base_row)
    tables: dict = {}
    try:
        got = _download(ref, settings, download_cfg)
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
        row.update(status="download_failed", error=_error_text(exc))
    except (InvalidVideo, DecodeError) as exc:
        row.update(status="invalid_video", error=_error_text(exc))
    except DetectorError as exc:  # the pose backend could not run (e.g. OpenPose without Docker)
        row.update(status="detector_failed", error=_error_text(exc))
    except Exception as exc:  # anything else: keep going, record it with the traceback's last line
        get_run_logger().error("video %s failed:\n%s", ref.video_id, traceback.format_exc())
        row.update(status="failed", error=f"{type(exc).__name__}: {_error_text(exc)}")
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
                  download_cfg: dl.DownloadConfig, progress: bool) -> State:
    """One video end to end. Ends Failed, with the status and error as its message, when the video
    could not be harvested (its status row is stored either way), so the UI shows what went wrong."""
    row = _harvest_one(ref, base_row, settings, detector=detector, fps=fps, download_cfg=download_cfg,
                       progress=progress)
    if row["status"] in OK_STATUSES:
        return Completed(message=f"{row['status']}: {row['n_tracks_kept']} tracks kept", data=row["status"])
    return Failed(message=f"{row['status']}: {row['error']}", data=row["status"])


def _base_row(ref_or_entry, *, video_id: str, run_id: str, detector: str, url: str | None) -> dict:
    entry = ref_or_entry.entry if isinstance(ref_or_entry, src.VideoRef) else ref_or_entry
    return harvest_tables.base_video_row(
        video_id=video_id, source=entry.source, url=url, tags=entry.tags, run_id=run_id, detector=detector
    )


@flow(name="harvest", log_prints=True)
def harvest(
    sources: str,
    home: str | None = None,
    detector: str = "mediapipe",
    fps: float | None = None,
    retry_failed: bool = False,
    max_height: int = 720,
    max_duration_s: float = 1800.0,
    progress: bool = True,
    workers: int = 1,
    dask_address: str | None = None,
) -> dict:
    """Harvest 2D person tracks from every video of a sources file into the lakehouse.

    sources: path of a text/CSV/JSON sources file (see ``pose_harvest.sources``).
    home: data root (default ``HMMR_HOME`` or ``./hmmr-data``).
    detector: 2D pose backend (``mediapipe``, the embedded default).
    fps: decode at this frame rate instead of the video's own.
    retry_failed: also redo videos whose earlier attempt failed (dead links are kept as they are).
    workers: videos harvested at once; above 1, on a local Dask cluster of that many processes.
    dask_address: an existing Dask scheduler (``tcp://host:8786``) to run the videos on instead.
    Returns per-status counts of this run.
    """
    settings = Settings(home=Path(home)) if home else Settings()
    settings.ensure_dirs()
    logger = get_run_logger()
    run_id = uuid.uuid4().hex[:12]
    download_cfg = dl.DownloadConfig(max_height=max_height, max_duration_s=max_duration_s)
    with Lake(settings=settings) as lake:
        done = lake.done_video_ids(retry_failed=retry_failed)
    seen: dict[str, int] = {}
    work: list[tuple[src.VideoRef, dict]] = []
    for entry in src.read_sources(sources):
        if entry.error:
            vid = f"bad:{src.short_hash(f'{entry.line}:{entry.source}')}"
            work.append((None, _base_row(entry, video_id=vid, run_id=run_id, detector=detector, url=None)
                         | {"status": "bad_source", "error": f"line {entry.line}: {entry.error}"}))
            continue
        try:
            refs = expand_source(entry)
        except YoutubeDLError as exc:
            vid = src.video_id_for(entry.url)
            work.append((None, _base_row(entry, video_id=vid, run_id=run_id, detector=detector, url=entry.url)
                         | {"status": "download_failed", "error": _error_text(exc).replace("ERROR: ", "")}))
            continue
        for ref in refs:
            base = _base_row(ref, video_id=ref.video_id, run_id=run_id, detector=detector, url=ref.url)
            if ref.video_id in seen:
                n = seen[ref.video_id] = seen[ref.video_id] + 1
                dup_id = f"dup:{src.short_hash(f'{ref.video_id}:{n}')}"
                work.append((None, base | {"video_id": dup_id, "status": "duplicate",
                                           "error": f"line {entry.line}: same video as {ref.video_id}"}))
                continue
            seen[ref.video_id] = 0
            work.append((ref, base))
    todo = [(ref, row) for ref, row in work if row["video_id"] not in done]
    skipped = len(work) - len(todo)
    logger.info("%d videos from %s: %d to do, %d already harvested", len(work), sources, len(todo), skipped)
    tracker = harvest_report.Progress(total=len(todo), key="harvest-progress",
                                      description=f"Harvest {run_id}: share of its {len(todo)} videos finished")
    for ref, row in todo:
        if ref is None:  # a source that never became a downloadable video
            store_video(row["video_id"], row, {}, settings)
            tracker.step()
    videos = [(ref, row) for ref, row in todo if ref is not None]
    parallel = workers > 1 or dask_address is not None
    options = dict(settings=settings, detector=detector, fps=fps, download_cfg=download_cfg,
                   progress=progress and not parallel)
    if parallel:
        with dask_runner(workers=workers, address=dask_address) as runner:
            futures = [runner.submit(harvest_video, {"ref": ref, "base_row": row, **options}) for ref, row in videos]
            for _ in tqdm(as_completed(futures), total=len(futures), desc="videos", unit="video", disable=not progress):
                tracker.step()
    else:
        for ref, row in tqdm(videos, desc="videos", unit="video", disable=not progress):
            harvest_video(ref, row, **options, return_state=True)
            tracker.step()
    processed = harvest_report.publish(settings, run_id=run_id, skipped=skipped)
    new_tracks = triggers.announce_growth(settings)  # starts train/when-data-grows when enough is new
    if new_tracks is not None:
        logger.info("%d kept tracks since the last model: emitted %s", new_tracks, triggers.DATA_GROWN)
    return {"run_id": run_id, "processed": processed, "skipped": skipped}
