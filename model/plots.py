"""Plots of predicted 3D motion: a track's joint acceleration over time (smoothness, and the error
against ground truth where it is known), from :mod:`model.metrics`.

Acceleration is in mm/frame^2 at frames 1 .. N-2 (the second difference needs both neighbours).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure, SubFigure

from hmmr.figures import new_figure
from model import metrics

COLOURS = {"predicted": "#4c72b0", "ground truth": "#55a868", "error": "#c44e52"}


def acceleration_curves(pred: np.ndarray, gt: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-frame accelerations ``(N - 2,)`` of ``pred`` ``(N, 14, 3)`` LSP joints in metres (the
    prediction's own, :func:`model.metrics.acceleration`) and, given ``gt`` ``(N, 14, 3)``, of the
    ground truth and the acceleration error (:func:`model.metrics.acceleration_error`)."""
    curves = {"predicted": metrics.acceleration(pred)}
    if gt is not None:
        curves |= {"ground truth": metrics.acceleration(gt), "error": metrics.acceleration_error(pred, gt)}
    return curves


def acceleration_figure(curves: dict[str, np.ndarray], title: str, start_frame: int | None = None,
                        fig: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """A line per curve of :func:`acceleration_curves` (or ``track_metrics``' ``accel``/``accel_error``)
    over the track's frames: video frames from ``start_frame`` (the track's first), else frames of the
    track from 0. Drawn into ``fig`` (e.g. one of a figure's subfigures) or a new figure."""
    fig = fig if fig is not None else new_figure()
    ax = fig.subplots()
    for label, values in curves.items():
        frames = (start_frame or 0) + 1 + np.arange(len(values))
        ax.plot(frames, values, label=f"{label} (mean {np.nanmean(values):.1f})" if np.isfinite(values).any() else label,
                color=COLOURS.get(label), linewidth=1.2)
    ax.set_xlabel("frame" if start_frame is not None else "frame of the track")
    ax.set_ylabel("acceleration (mm/frame$^2$)")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.legend()
    return fig
