"""Plots in the flows' Prefect artifacts: PNG files, embedded in markdown artifacts as data URIs (the
Prefect UI shows them inline; :mod:`hmmr.figures`).

* the harvest report (:mod:`flows.harvest_report`) gets the dataset plots of the whole lakehouse;
* the evaluate flow gets the acceleration over time of its longest tracks (``evaluation-acceleration``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect.artifacts import create_markdown_artifact

from hmmr.config import Settings
from hmmr.figures import markdown_image, save_png
from model.plots import acceleration_figure
from model.prediction_files import folder_name
from warehouse.plots import write_dataset_plots

DATASET_TITLES = {"tracks_per_tag": "Kept tracks per tag", "track_lengths": "Track lengths",
                  "keypoint_visibility": "Keypoint visibility"}
ACCEL_TRACKS = 3  # tracks plotted by the evaluate flow: the longest


def dataset_markdown(settings: Settings, folder: Path) -> list[str]:
    """Markdown lines showing the dataset plots (written into ``folder``); none without a kept track."""
    written = write_dataset_plots(settings, folder)
    if not written:
        return []
    lines = ["", "## The dataset after this run", "", f"The whole lakehouse; PNG files in `{folder}`.", ""]
    for name, path in written.items():
        lines += [f"### {DATASET_TITLES.get(name, name)}", "", markdown_image(path, name), ""]
    return lines


def publish_acceleration(tracks: list[dict], per_track: list[dict[str, np.ndarray]], folder: Path,
                         n: int = ACCEL_TRACKS) -> list[Path]:
    """Plot the acceleration curves (``accel``, and ``accel_error`` where ground truth exists) of the
    ``n`` longest of ``tracks`` (rows with ``video_id``, ``track_id``, ``n_frames``, in the order of
    ``per_track``, the :func:`model.evaluate.track_metrics` results) into ``folder`` and publish them as
    the markdown artifact ``evaluation-acceleration``; returns the PNG files."""
    longest = sorted(range(len(tracks)), key=lambda i: (-tracks[i]["n_frames"], i))[:n]
    lines = ["# Acceleration of the predicted 3D joints", "",
             f"The {len(longest)} longest evaluated tracks: the prediction's own acceleration (mm/frame^2, lower is "
             "smoother) and, where 3D ground truth exists, the acceleration error. PNG files in "
             f"`{folder}`.", ""]
    written = []
    for i in longest:
        t, m = tracks[i], per_track[i]
        curves = {"predicted": m["accel"]} | ({"error": m["accel_error"]} if "accel_error" in m else {})
        name = f"{t['video_id']} track {t['track_id']}"
        path = save_png(acceleration_figure(curves, f"{name}: acceleration"),
                        folder / f"accel_{folder_name(t['video_id'])}_track_{t['track_id']}.png")
        written.append(path)
        lines += [f"## {name} ({t['n_frames']} frames)", "", markdown_image(path, name), ""]
    create_markdown_artifact(key="evaluation-acceleration", markdown="\n".join(lines) + "\n",
                             description="Acceleration over time of the longest evaluated tracks")
    return written
