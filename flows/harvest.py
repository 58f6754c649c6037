"""The ``harvest`` flow: sources -> download -> probe -> 2D pose -> tracks -> curation -> lakehouse.

Thin on purpose: every task wraps one plain function of ``pose_harvest`` or ``warehouse``. Each video
is one ``harvest-video`` task run (download, probe, detect, track and store are its child task runs;
:mod:`flows.video_tasks`).
A failure of one video (dead link, not a video) becomes that video's status row and a failed
``harvest-video`` run with the reason in the UI; the flow goes on with the other videos and completes.
Every video commits in one transaction, so a killed run resumes where it stopped and never duplicates
rows. Videos run one after another by default, or in parallel on Dask (``workers``/``dask_address``).
"""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from tqdm import tqdm
from yt_dlp.utils import YoutubeDLError

from flows import harvest_report, triggers
from flows.runners import dask_runner
from flows.video_tasks import error_text, harvest_video, limited_download_tags, store_video
from hmmr.config import Settings
from pose_harvest import download as dl
from pose_harvest import sources as src
from warehouse import harvest_tables
from warehouse.lake import Lake


@task(name="expand-source", cache_policy=NO_CACHE, task_run_name="expand-line-{entry.line}")
def expand_source(entry: src.SourceEntry) -> list[src.VideoRef]:
    return src.expand(entry)


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
    workers: videos harvested at once; above 1, on a local Dask cluster of that many one-thread workers (``flows.runners``).
    dask_address: an existing Dask scheduler (``tcp://host:8786``) to run the videos on instead.
    Returns per-status counts of this run.
    """
    settings = Settings.at(home)
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
                         | {"status": "download_failed", "error": error_text(exc).replace("ERROR: ", "")}))
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
                   limited_tags=limited_download_tags(), progress=progress and not parallel)
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
