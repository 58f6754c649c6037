"""``hmmr import openpose``: a folder of OpenPose JSON for one video, into the harvest tables.

The video is named by its path (stored and identified exactly as ``hmmr harvest`` would store that
file, so a later harvest of it skips it) or by the ``video_id`` of a video already in the warehouse.
The JSON's people then go through the harvest's own tracking and curation, and the video's rows are
written in one transaction with ``detector = 'openpose_json'``. Importing the same folder again
replaces the video's rows with identical ones: no row is ever duplicated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from hmmr.config import Settings
from pose_harvest import download as dl
from pose_harvest import openpose_json
from pose_harvest import sources as src
from pose_harvest.keypoints import Layout
from pose_harvest.tracks import track_and_curate
from pose_harvest.video import probe, scene_cuts, shots_from_cuts
from warehouse import harvest_tables
from warehouse.lake import Lake

DETECTOR = "openpose_json"


class ImportRefused(Exception):
    """The import would be wrong or lose data; the message says why and what to do."""


@dataclass(frozen=True)
class ImportResult:
    video_id: str
    layout: str
    n_frames: int
    missing_frames: int
    n_detections: int
    n_tracks: int
    n_tracks_kept: int
    replaced: str | None  # detector of the rows this import replaced, if any


def _existing(lake: Lake, video_id: str) -> dict | None:
    rows = lake.query("SELECT * FROM videos WHERE video_id = ?", [video_id]).to_pylist()
    return rows[0] if rows else None


def import_openpose(folder: Path, video: str, settings: Settings, *, layout: Layout | None = None,
                    replace: bool = False) -> ImportResult:
    """Import ``folder`` (OpenPose JSON) for ``video`` (a file path or a stored ``video_id``).

    Refuses (:class:`ImportRefused`) to overwrite a video whose stored detections come from another
    detector unless ``replace``, and a folder with more frames than the video.
    """
    settings.ensure_dirs()
    with Lake(settings=settings) as lake:
        path = Path(video).expanduser()
        if path.is_file():
            url = path.resolve().as_uri()
            video_id = src.video_id_for(url)
            source = str(path.resolve())
        else:
            stored = _existing(lake, video)
            if stored is None or not stored.get("raw_path"):
                raise ImportRefused(f"{video!r} is neither a video file nor the video_id of a stored video "
                                    "(list them: hmmr sql \"SELECT video_id, source FROM videos\")")
            video_id, url, source = video, stored["url"], stored["source"]
        before = _existing(lake, video_id)
        if before and before["detector"] not in (DETECTOR, None) and before["n_detections"] and not replace:
            raise ImportRefused(f"{video_id} already has {before['n_detections']} detections from {before['detector']}; "
                                "pass --replace to replace them with the OpenPose ones")
        got = dl.download(url, video_id, settings.raw_dir, settings.download_archive, dl.DownloadConfig())
        info = probe(got.path)
        op = openpose_json.read_folder(folder, layout=layout, n_frames=info.n_frames)
        if op.n_frames > info.n_frames:
            raise ImportRefused(f"{folder} has frames up to {op.first_frame + op.n_frames - 1}, the video only {info.n_frames} frames: wrong video?")
        dets = openpose_json.to_video_detections(op, info.fps, shots_from_cuts(scene_cuts(got.path), op.n_frames))
        tracked = track_and_curate(dets)
        row = harvest_tables.base_video_row(video_id=video_id, source=source, url=url, tags={"import": "openpose"},
                                            run_id=f"import-{uuid.uuid4().hex[:8]}", detector=DETECTOR)
        row.update(raw_path=str(got.path), sha256=got.sha256, size_bytes=got.size_bytes,
                   extractor=got.info.get("extractor_key") or got.info.get("extractor"))
        row.update(harvest_tables.probe_columns(info))
        row.update(harvest_tables.summary_columns(dets, tracked))
        row["status"] = "ok" if row["n_detections"] else "no_people"
        if op.missing:
            row["error"] = f"{len(op.missing)} frames had no JSON file (counted as frames with nobody)"
        lake.write_video(row, harvest_tables.video_tables(video_id, dets, tracked))
    return ImportResult(video_id=video_id, layout=op.layout.name, n_frames=op.n_frames, missing_frames=len(op.missing),
                        n_detections=row["n_detections"], n_tracks=row["n_tracks"], n_tracks_kept=row["n_tracks_kept"],
                        replaced=before["detector"] if before and before["detector"] != DETECTOR else None)
