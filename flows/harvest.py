"""The ``harvest`` flow: sources -> download -> probe -> 2D pose -> tracks -> curation -> lakehouse.

Thin on purpose: every task wraps one plain function of ``pose_harvest`` or ``warehouse``. A failure
of one video (dead link, not a video, nobody in it) becomes that video's status row and a failed task
run in the UI; the flow goes on with the other videos. Every video commits in one transaction, so a
killed run resumes where it stopped and never duplicates rows.
"""

from __future__ import annotations

import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from tqdm import tqdm
from yt_dlp.utils import YoutubeDLError

from hmmr.config import Settings
from pose_harvest import download as dl
from pose_harvest import sources as src
from pose_harvest.detections import DecodeError, VideoDetections, detect_video
from pose_harvest.detectors import get_detector
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


@dataclass
class HarvestSummary:
    """What a harvest run did: per-status counts of the videos it processed this run."""

    run_id: str
    processed: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def count(self, status: str) -> None:
        self.processed[status] = self.processed.get(status, 0) + 1


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 2000 else text[:2000] + " ..."


def _harvest_one(ref: src.VideoRef, base_row: dict, settings: Settings, *, detector: str,
                 fps: float | None, download_cfg: dl.DownloadConfig, progress: bool) -> str:
    """Run one video through every stage; store its rows (or its failure) in one transaction."""
    row = dict(base_row)
    tables: dict = {}
    try:
        got = download_video(ref, settings, download_cfg)
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
    except Exception as exc:  # anything else: keep going, record it with the traceback's last line
        get_run_logger().error("video %s failed:\n%s", ref.video_id, traceback.format_exc())
        row.update(status="failed", error=f"{type(exc).__name__}: {_error_text(exc)}")
        tables = {}
    store_video(ref.video_id, row, tables, settings)
    return row["status"]


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
) -> dict:
    """Harvest 2D person tracks from every video of a sources file into the lakehouse.

    sources: path of a text/CSV/JSON sources file (see ``pose_harvest.sources``).
    home: data root (default ``HMMR_HOME`` or ``./hmmr-data``).
    detector: 2D pose backend (``mediapipe``, the embedded default).
    fps: decode at this frame rate instead of the video's own.
    retry_failed: also redo videos whose earlier attempt failed (dead links are kept as they are).
    Returns per-status counts of this run.
    """
    settings = Settings(home=Path(home)) if home else Settings()
    settings.ensure_dirs()
    logger = get_run_logger()
    run_id = uuid.uuid4().hex[:12]
    summary = HarvestSummary(run_id=run_id)
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
    summary.skipped = len(work) - len(todo)
    logger.info("%d videos from %s: %d to do, %d already harvested", len(work), sources, len(todo), summary.skipped)
    for ref, row in tqdm(todo, desc="videos", unit="video", disable=not progress):
        if ref is None:  # a source that never became a downloadable video
            store_video(row["video_id"], row, {}, settings)
            summary.count(row["status"])
        else:
            summary.count(_harvest_one(ref, row, settings, detector=detector, fps=fps,
                                       download_cfg=download_cfg, progress=progress))
    _publish_artifact(settings, summary)
    return {"run_id": run_id, "processed": summary.processed, "skipped": summary.skipped}


def _publish_artifact(settings: Settings, summary: HarvestSummary) -> None:
    """One markdown artifact per run: the videos of this run by status, straight from the warehouse."""
    with Lake(settings=settings) as lake:
        table = lake.query(
            "SELECT status, count(*) AS videos, sum(coalesce(max_people, 0)) AS people_max_sum, "
            "sum(coalesce(n_tracks_kept, 0)) AS tracks_kept FROM videos "
            f"WHERE run_id = '{summary.run_id}' GROUP BY status ORDER BY status"
        ).to_pylist()
    lines = ["| status | videos | tracks kept |", "|---|---|---|"]
    lines += [f"| {r['status']} | {r['videos']} | {r['tracks_kept']} |" for r in table]
    body = "\n".join(lines) if table else "_nothing new to harvest_"
    create_markdown_artifact(
        key="harvest-summary",
        markdown=f"# Harvest {summary.run_id}\n\nSkipped (already harvested): {summary.skipped}\n\n{body}\n",
        description="Videos harvested in this run, by status",
    )

