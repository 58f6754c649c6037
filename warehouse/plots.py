"""Plots of the harvested 2D data, from SQL over the lakehouse: the dataset and one track.

Dataset (:func:`dataset_figures`): kept tracks per tag, the track-length histogram (kept and dropped
tracks stacked), and the share of kept tracks' detections in which each of the 25 keypoints is
visible (confidence >= 0.1). Track (:func:`track_confidence_figure`): every keypoint's confidence
over the track's frames as a heat map (blank where the person was not detected and the box was
interpolated). Each ``*_figure`` drawing function takes plain arrays; the ``*_data`` functions run the
queries.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator

from hmmr.config import Settings
from hmmr.figures import new_figure, save_png
from pose_harvest.keypoints import HMMR25
from warehouse.catalog import read_only_query
from warehouse.windows import VISIBLE_CONF

UNTAGGED = "(untagged)"
MAX_TAGS = 30  # bars in the per-tag plot; the rest are summed into one


def tag_labels(tags_json: str | None) -> list[str]:
    """The labels a video's tags give in the per-tag plot: ``#dance`` per hashtag, ``key=value`` per
    other tag, ``(untagged)`` when there is none."""
    tags = json.loads(tags_json) if tags_json else {}
    labels = [f"#{h}" for h in tags.get("hashtag", "").split(",") if h]
    labels += [f"{k}={v}" for k, v in sorted(tags.items()) if k != "hashtag"]
    return labels or [UNTAGGED]


def tracks_per_tag_data(settings: Settings) -> dict[str, int]:
    """Kept tracks per tag label (a track counts once under each of its video's tags), most first."""
    counts: dict[str, int] = {}
    for row in read_only_query(settings, "SELECT tags, count(*) AS n FROM curated_tracks GROUP BY tags").to_pylist():
        for label in tag_labels(row["tags"]):
            counts[label] = counts.get(label, 0) + row["n"]
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def track_lengths_data(settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Lengths in frames of the kept and of the dropped tracks."""
    rows = read_only_query(settings, "SELECT n_frames, kept FROM tracks").to_pydict()
    n, kept = np.asarray(rows["n_frames"], np.int64), np.asarray(rows["kept"], bool)
    return n[kept], n[~kept]


def keypoint_visibility_data(settings: Settings) -> tuple[np.ndarray, int]:
    """Per HMMR-25 keypoint, the share of kept tracks' detections in which it is visible ``(25,)``, and
    the number of detections (one scan; NaN everywhere when there is none)."""
    shares = ", ".join(f"avg(CASE WHEN d.kp_conf[{k + 1}] >= {VISIBLE_CONF} THEN 1.0 ELSE 0.0 END) AS k{k}" for k in range(len(HMMR25)))
    row = read_only_query(settings, f"SELECT count(*) AS n, {shares} FROM detections d JOIN curated_tracks c "
                                    "USING (video_id, track_id)").to_pylist()[0]
    return np.array([np.nan if row[f"k{k}"] is None else row[f"k{k}"] for k in range(len(HMMR25))]), int(row["n"])


def tracks_per_tag_figure(counts: dict[str, int], most: int = MAX_TAGS) -> Figure:
    """A horizontal bar per tag label (``counts`` most first): its number of kept tracks; past ``most``
    labels, one bar sums the rest."""
    if len(counts) > most:
        rest = list(counts)[most - 1:]
        counts = dict(list(counts.items())[:most - 1]) | {f"({len(rest)} other tags)": sum(counts[k] for k in rest)}
    fig = new_figure(7.0, max(2.0, 0.9 + 0.3 * len(counts)))
    ax = fig.subplots()
    labels = list(counts)[::-1]
    bars = ax.barh(labels, [counts[k] for k in labels], color="#4c72b0")
    ax.bar_label(bars, padding=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("kept tracks")
    ax.set_title("Kept tracks per tag")
    ax.margins(x=0.12)
    return fig


def track_lengths_figure(kept: np.ndarray, dropped: np.ndarray, fps: float | None = None, bins: int = 20) -> Figure:
    """Histogram of track lengths in frames, kept and dropped tracks stacked, ``bins`` bins from 0 to the
    longest; ``fps`` adds a seconds axis."""
    fig = new_figure()
    ax = fig.subplots()
    longest = max([1, *kept.tolist(), *dropped.tolist()])
    edges = np.linspace(0, longest, bins + 1)
    ax.hist([kept, dropped], bins=edges, stacked=True, label=[f"kept ({len(kept)})", f"dropped ({len(dropped)})"],
            color=["#4c72b0", "#c7c7c7"])
    ax.set_xlabel("track length (frames)")
    ax.set_ylabel("tracks")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Track lengths")
    ax.legend()
    if fps:
        top = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda s: s * fps))
        top.set_xlabel(f"seconds at {fps:g} fps")
    return fig


def keypoint_visibility_figure(shares: np.ndarray, n_detections: int) -> Figure:
    """A bar per HMMR-25 keypoint: the share of detections in which it is visible."""
    fig = new_figure(8.0, 3.8)
    ax = fig.subplots()
    ax.bar(range(len(HMMR25)), shares, color="#55a868")
    ax.set_xticks(range(len(HMMR25)), HMMR25.joints, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"visible (confidence >= {VISIBLE_CONF:g})")
    ax.set_title(f"Keypoint visibility over {n_detections:,} detections in kept tracks")
    return fig


def dataset_figures(settings: Settings) -> dict[str, Figure]:
    """The dataset plots of the whole lakehouse, by file stem: ``tracks_per_tag``, ``track_lengths``,
    ``keypoint_visibility``."""
    rates = read_only_query(settings, "SELECT min(fps) AS lo, max(fps) AS hi FROM videos WHERE status = 'ok'").to_pylist()[0]
    fps = rates["lo"] if rates["lo"] and rates["lo"] == rates["hi"] else None  # a seconds axis only when every video has one rate
    return {
        "tracks_per_tag": tracks_per_tag_figure(tracks_per_tag_data(settings)),
        "track_lengths": track_lengths_figure(*track_lengths_data(settings), fps=fps),
        "keypoint_visibility": keypoint_visibility_figure(*keypoint_visibility_data(settings)),
    }


def write_dataset_plots(settings: Settings, folder: Path) -> dict[str, Path]:
    """Write :func:`dataset_figures` as ``folder/<name>.png``; returns the files by name (none when the
    lakehouse has no kept track yet)."""
    if not read_only_query(settings, "SELECT count(*) AS n FROM curated_tracks").to_pylist()[0]["n"]:
        return {}
    return {name: save_png(fig, folder / f"{name}.png") for name, fig in dataset_figures(settings).items()}


def track_confidence_data(settings: Settings, video_id: str, track_id: int) -> tuple[np.ndarray, np.ndarray]:
    """A track's frames ``(N,)`` (start to end, inclusive) and keypoint confidences ``(N, 25)``, NaN on
    frames without a detection. Raises LookupError when the track does not exist."""
    span = read_only_query(settings, "SELECT start_frame, end_frame FROM tracks WHERE video_id = $v AND track_id = $t",
                           params={"v": video_id, "t": int(track_id)}).to_pylist()
    if not span:
        raise LookupError(f"no track {track_id} in video {video_id!r} "
                          "(list them: hmmr sql \"SELECT video_id, track_id, n_frames FROM curated_tracks\")")
    frames = np.arange(span[0]["start_frame"], span[0]["end_frame"] + 1)
    rows = read_only_query(settings, "SELECT frame, kp_conf FROM detections WHERE video_id = $v AND track_id = $t",
                           params={"v": video_id, "t": int(track_id)}).to_pydict()
    conf = np.full((len(frames), len(HMMR25)), np.nan)
    conf[np.asarray(rows["frame"], np.int64) - frames[0]] = np.asarray(rows["kp_conf"], np.float64).reshape(-1, len(HMMR25))
    return frames, conf


def track_confidence_figure(frames: np.ndarray, conf: np.ndarray, title: str, fig: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """Heat map of ``conf`` ``(N, 25)``: a row per HMMR-25 keypoint, a column per frame (blank = not
    detected); drawn into ``fig`` (e.g. one of a figure's subfigures) or a new figure."""
    fig = fig if fig is not None else new_figure(9.0, 5.0)
    ax = fig.subplots()
    image = ax.imshow(conf.T, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                      extent=(frames[0] - 0.5, frames[-1] + 0.5, len(HMMR25) - 0.5, -0.5))
    ax.set_yticks(range(len(HMMR25)), HMMR25.joints, fontsize=7)
    ax.set_xlabel("frame")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="keypoint confidence")
    return fig
