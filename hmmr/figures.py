"""Figures as files and in Prefect artifacts: matplotlib ``Figure`` objects drawn off-screen (Agg).

Plots are built on ``matplotlib.figure.Figure`` directly, not pyplot: no global figure state, no GUI
backend, safe in flow and worker threads; ``savefig`` to PNG renders with Agg.

In a Prefect markdown artifact an image shows when it is embedded as a ``data:image/png;base64,...``
URI (the UI renders markdown images and keeps data URIs; a ``file://`` link does not show in a
browser, so the PNG files are linked beside the embedded image for download only).
"""

from __future__ import annotations

import base64
from pathlib import Path

from matplotlib.figure import Figure

DPI = 100


def new_figure(width: float = 7.0, height: float = 3.5) -> Figure:
    """An empty figure, ``width`` x ``height`` inches, laid out to fit its labels."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_png(fig: Figure, path: Path | str) -> Path:
    """Write ``fig`` as a PNG (parent folders made); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def markdown_image(png: Path, alt: str) -> str:
    """Markdown that shows the PNG file ``png`` inline (a base64 data URI) with a link to the file."""
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})\n\n[{Path(png).name}](file://{Path(png).resolve()})"
