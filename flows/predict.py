"""The ``predict`` flow: a trained checkpoint on a new video (URL or file) or a single image.

Video: the ``harvest`` flow runs first as a subflow (download, probe, 2D pose, tracks, curation), so
the video lands in the lakehouse like any harvest (one harvested before is read, not harvested
again); then one ``predict-track`` task per kept track (the paper's sliding windows, the body mesh,
the camera in the original image), ``write-predictions`` (``predictions.parquet`` and
``predictions.npz``, format in :mod:`model.prediction_files`) and ``render-overlay`` (``overlay.mp4``).
Image: ``detect-image`` finds and crops the people, ``hallucinate`` predicts t - 5, t and t + 5 for
each, ``render-panels`` writes the PNG.

What cannot be predicted (a checkpoint of another configuration or not a checkpoint, no people, no
kept track, an unreadable file, a bad URL) ends the flow in a Failed state whose one-line message
names the fix, without a traceback; calling the flow then raises that :class:`PredictError` (or
:class:`~model.train.CheckpointMismatch`). Nothing is written for it.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import cv2
import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from yt_dlp.utils import YoutubeDLError

from flows.harvest import harvest
from hmmr.config import Settings
from model import prediction_files as files
from model.camera import crop_camera_to_image
from model.overlay import render_overlay, render_panels
from model.predict import ImagePeople, Predictor, TrackMotion, hallucinate, load_predictor, people_in_image, predict_motion
from model.train import CheckpointMismatch
from pose_harvest import sources as src
from pose_harvest.detectors import get_detector
from pose_harvest.video import InvalidVideo, probe
from warehouse.catalog import read_only_query
from warehouse.lake import current_snapshot
from warehouse.torch_dataset import whole_track

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class PredictError(Exception):
    """The input cannot be predicted; the message says why and what to do."""


def is_image(source: str) -> bool:
    """A local file whose name says it is a picture."""
    return "://" not in source and Path(source).suffix.lower() in IMAGE_SUFFIXES


def _source_entry(source: str, folder: Path) -> tuple[src.SourceEntry, Path]:
    """The one-line sources file of ``source`` (in ``folder``) and its parsed entry."""
    local = Path(source).expanduser()
    text = str(local.resolve()) if local.exists() else source
    sources = folder / "sources.txt"
    sources.write_text(text + "\n")
    entries = src.read_sources(sources)
    if not entries:
        raise PredictError(f"nothing to predict in {source!r}: give a video URL or file, or an image")
    entry = entries[0]
    if entry.error:
        raise PredictError(f"{entry.error}: give a video URL (http(s)://...) or an existing video or image file")
    return entry, sources


class _Silent:
    """A yt-dlp logger that keeps quiet (its errors come back as exceptions)."""

    def debug(self, msg: str) -> None: ...

    info = warning = error = debug


def find_video(entry: src.SourceEntry) -> src.VideoRef:
    """The one video a source names (a playlist is refused)."""
    try:
        refs = src.expand(entry, ydl_params={"logger": _Silent()})
    except YoutubeDLError as exc:
        reason = str(exc).replace("ERROR: ", "").strip().splitlines()[0].split(" (caused by ")[0]
        raise PredictError(f"cannot open {entry.source}: {reason}; check the URL, or download the video and give its file") from exc
    if len(refs) != 1:
        raise PredictError(f"{entry.source} names {len(refs)} videos: predict one video at a time (give a video's own URL)")
    return refs[0]


def _why_not(row: dict | None, source: str) -> str:
    """The one-line reason a harvested video gives no prediction, or '' when it has kept tracks."""
    if row is None:
        return f"{source} was not harvested (see the harvest run's logs)"
    status, error = row["status"], row["error"] or ""
    if status == "ok" and row["n_tracks_kept"]:
        return ""
    if status in ("ok", "no_people"):
        if not row["n_detections"]:
            return f"no person found in {source} ({row['n_frames']} frames): nothing predicted, nothing written"
        return (f"no person in {source} stays visible long enough to predict ({row['n_tracks_kept'] or 0} of "
                f"{row['n_tracks'] or 0} tracks kept; a track needs 40 frames with most of the body visible): nothing written")
    fixes = {"download_failed": "check the URL, or download the video yourself and give its file",
             "invalid_video": "give a video file that ffprobe can open",
             "detector_failed": "the error says how to make the pose detector run"}
    return f"{source}: {status.replace('_', ' ')}: {error}; {fixes.get(status, 'see the harvest logs')}"


@task(name="predict-track", cache_policy=NO_CACHE, task_run_name="predict-{video_id}-{track_id}")
def predict_one_track(pred: Predictor, settings: Settings, video_id: str, track_id: int, n_frames: int, snapshot: int,
                      image_size: tuple[int, int]) -> TrackMotion:
    item = whole_track(settings, video_id, track_id, n_frames, frames=pred.cfg.encoder == "resnet50", at_version=snapshot)
    inputs = item["images"] if pred.cfg.encoder == "resnet50" else item["kps"]
    return predict_motion(pred, inputs.numpy(), item["affine"].numpy(), item["frames"].numpy(),
                          item["has_detection"].numpy(), image_size)


@task(name="write-predictions", cache_policy=NO_CACHE)
def write_predictions(out: Path, tracks: dict[int, TrackMotion], faces: np.ndarray, meta: dict) -> tuple[Path, Path]:
    return files.write_predictions(out, tracks, faces, meta)


@task(name="render-overlay", cache_policy=NO_CACHE)
def overlay_video(video: dict, out: Path, tracks: dict[int, TrackMotion], faces: np.ndarray, progress: bool) -> int:
    return render_overlay(Path(video["raw_path"]), out, tracks, faces, width=video["width"], height=video["height"],
                          fps=video["fps"], resample=abs(video["fps"] - video["file_fps"]) > 1e-3, progress=progress)


def resolve_video(source: str, folder: Path) -> tuple[src.SourceEntry, src.VideoRef, Path]:
    """Check a video source before anything heavy runs: its entry, its one video and the one-line
    sources file (in ``folder``) the harvest reads."""
    entry, sources = _source_entry(source, folder)
    if entry.url.startswith("file://"):  # a local file: say at once when it is no video
        try:
            probe(Path(entry.source))
        except InvalidVideo as exc:
            raise PredictError(f"{entry.source}: {exc}; give a video file that ffprobe can open, or an image") from exc
    return entry, find_video(entry), sources


def _predict_video(pred: Predictor, entry: src.SourceEntry, ref: src.VideoRef, sources: Path, settings: Settings,
                   out: str | None, *, fps: float | None, max_height: int, render: bool, progress: bool) -> dict:
    logger = get_run_logger()
    harvest(sources=str(sources), home=str(settings.home), fps=fps, retry_failed=True, max_height=max_height, progress=progress)
    snapshot = current_snapshot(settings)
    rows = read_only_query(settings, "SELECT * FROM videos WHERE video_id = $v", params={"v": ref.video_id},
                           at_version=snapshot).to_pylist()
    row = rows[0] if rows else None
    if reason := _why_not(row, entry.source):
        raise PredictError(reason)
    tracks = read_only_query(settings, "SELECT track_id, n_frames FROM tracks WHERE video_id = $v AND kept ORDER BY track_id",
                             params={"v": ref.video_id}, at_version=snapshot).to_pylist()
    size = (row["width"], row["height"])
    motions = {t["track_id"]: predict_one_track(pred, settings, ref.video_id, t["track_id"], t["n_frames"], snapshot, size)
               for t in tracks}
    folder = Path(out) if out else settings.home / "predictions" / files.folder_name(ref.video_id)
    meta = files.prediction_meta(video_id=ref.video_id, source=row["source"], fps=row["fps"], width=row["width"],
                                 height=row["height"], focal_px=float(max(size)), checkpoint=pred.checkpoint,
                                 checkpoint_step=pred.step, body_model=pred.body.kind, body_source=str(pred.body.source),
                                 n_vertices=pred.body.n_vertices, tracks=sorted(motions))
    parquet, npz = write_predictions(folder, motions, pred.faces, meta)
    written = {"parquet": str(parquet), "npz": str(npz)}
    if render:
        video = row | {"file_fps": probe(row["raw_path"]).fps}
        n = overlay_video(video, folder / files.OVERLAY, motions, pred.faces, progress)
        written["overlay"] = str(folder / files.OVERLAY)
        logger.info("overlay of %d frames: %s", n, written["overlay"])
    else:  # an overlay left from an earlier run would no longer match these predictions
        (folder / files.OVERLAY).unlink(missing_ok=True)
    frames = sum(len(m.frames) for m in motions.values())
    create_markdown_artifact(
        key="predict-summary", description=f"3D motion of {ref.video_id}",
        markdown=f"# Prediction of `{entry.source}`\n\nVideo `{ref.video_id}`, checkpoint `{pred.checkpoint}` (step {pred.step}), "
                 f"{pred.body.kind} body model.\n\n| track | frames |\n|---|---|\n"
                 + "".join(f"| {t} | {len(m.frames)} |\n" for t, m in sorted(motions.items()))
                 + "\n" + "".join(f"* {k}: `{v}`\n" for k, v in written.items()))
    return {"kind": "video", "video_id": ref.video_id, "out": str(folder), "tracks": sorted(motions), "frames": frames,
            "files": written}


@task(name="detect-image", cache_policy=NO_CACHE)
def detect_image(rgb: np.ndarray) -> ImagePeople:
    return people_in_image(rgb, get_detector("mediapipe"))


hallucinate_people = task(name="hallucinate", cache_policy=NO_CACHE)(hallucinate)


@task(name="render-panels", cache_policy=NO_CACHE)
def write_panels(path: Path, rgb: np.ndarray, hal, people: ImagePeople, faces: np.ndarray) -> Path:
    sheet = render_panels(rgb, hal, people.affine, faces)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise PredictError(f"could not write {path}")
    return path


def read_image(source: str) -> tuple[Path, np.ndarray]:
    """The image file and its ``(H, W, 3)`` uint8 RGB pixels."""
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise PredictError(f"no such image file: {source}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise PredictError(f"{path} is not a readable image: give a JPEG or PNG file")
    return path, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _predict_image(pred: Predictor, path: Path, rgb: np.ndarray, settings: Settings, out: str | None) -> dict:
    if pred.model.hallucinator is None:
        raise PredictError(f"{pred.checkpoint} was trained without the hallucinator, which single-image prediction needs: "
                           "give a video, or a checkpoint trained with it (the default)")
    people = detect_image(rgb)
    if not len(people):
        raise PredictError(f"no person found in {path}: give a picture in which a person's body is visible")
    hal = hallucinate_people(pred, people.inputs(pred.cfg, rgb))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    folder = Path(out) if out else settings.home / "predictions" / files.folder_name(f"image_{path.stem}_{digest}")
    png = write_panels(folder / f"{path.stem}_past_present_future.png", rgb, hal, people, pred.faces)
    meta = {"format_version": files.FORMAT_VERSION, "source": str(path), "width": rgb.shape[1], "height": rgb.shape[0],
            "checkpoint": str(pred.checkpoint), "checkpoint_step": pred.step, "body_model": pred.body.kind, "times": list(hal.times)}
    npz = files.write_image_predictions(folder, hal, people.boxes, crop_camera_to_image(hal.cam_crop, people.affine), pred.faces, meta)
    return {"kind": "image", "out": str(folder), "people": len(people), "files": {"png": str(png), "npz": str(npz)}}


@flow(name="predict", log_prints=True)
def predict(source: str, checkpoint: str, home: str | None = None, out: str | None = None, smpl: str | None = None,
            device: str = "auto", render: bool = True, fps: float | None = None, max_height: int = 720,
            progress: bool = True) -> dict:
    """3D people of a video (URL or file) or of one image (``.jpg``, ``.png`` ...) with a checkpoint of ``hmmr train``.

    out: output folder (default ``HOME/predictions/<video id>/``). smpl: the SMPL file the checkpoint
    was trained with (default ``HMMR_SMPL_PATH``, else the open body model). render: also write the
    overlay video. fps / max_height: the harvest's decoding rate and download height. Returns what was
    written; raises :class:`PredictError` (one line, with the fix) when nothing can be predicted.
    """
    settings = Settings.at(home)
    settings.ensure_dirs()
    log = get_run_logger().info
    try:  # the input first, then the checkpoint, then the work: what is wrong is said before anything heavy runs
        if is_image(source):
            path, rgb = read_image(source)
            pred = load_predictor(checkpoint, settings, smpl_path=smpl, device=device, log=log)
            return _predict_image(pred, path, rgb, settings, out)
        with tempfile.TemporaryDirectory() as tmp:
            entry, ref, sources = resolve_video(source, Path(tmp))
            pred = load_predictor(checkpoint, settings, smpl_path=smpl, device=device, log=log)
            return _predict_video(pred, entry, ref, sources, settings, out, fps=fps, max_height=max_height, render=render,
                                  progress=progress)
    except (PredictError, CheckpointMismatch) as exc:  # the user's input: a one-line Failed state, no traceback
        return Failed(message=str(exc), data=exc)
