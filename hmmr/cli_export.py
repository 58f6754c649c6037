"""``hmmr export``: a predicted track's motion as a file Blender opens (BVH skeleton or glTF skinned mesh).

(No ``from __future__ import annotations`` here: typer evaluates the ``--home`` option type, which
is passed in by :func:`register`.)"""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class ExportFormat(str, Enum):
    bvh = "bvh"
    gltf = "gltf"


class Units(str, Enum):
    m = "m"
    cm = "cm"


SUFFIX = {ExportFormat.bvh: ".bvh", ExportFormat.gltf: ".glb"}


def register(app: typer.Typer, home_opt) -> None:
    """Add ``hmmr export`` to ``app``; ``home_opt`` is the CLI's shared ``--home`` option type."""

    @app.command()
    def export(
        track: Annotated[int, typer.Argument(help="Track id in the predictions (hmmr predict lists them; tracks.track_id).")],
        predictions: Annotated[Path, typer.Option("--predictions", "-p", help="What hmmr predict wrote: its output folder (HOME/predictions/<video>/), predictions.npz or predictions.parquet.")],
        format: Annotated[Optional[ExportFormat], typer.Option("--format", "-f", help="bvh: the 24-joint SMPL skeleton; gltf: an animated skinned mesh (.glb). Default: from --out's suffix, else bvh.")] = None,
        out: Annotated[Optional[Path], typer.Option("--out", "-o", help="File to write. Default: track_<id>.bvh / .glb in the predictions' folder.")] = None,
        units: Annotated[Units, typer.Option(help="BVH lengths: m (metres) or cm (centimetres). glTF is always metres.")] = Units.m,
        translation: Annotated[bool, typer.Option(help="Move the root by the predicted translation (--no-translation: in place).")] = True,
        smpl: Annotated[Optional[Path], typer.Option(help="The SMPL file the predictions were made with, if it moved (default: the one they name).")] = None,
        home: home_opt = None,
    ) -> None:
        """Export one predicted track to BVH or glTF (metres, Y up, SMPL joint names, the video's frame rate).

        The body is turned from HMMR's camera frame (y down) to Y up; its shape is the mean of the
        track's per-frame shapes. glTF keeps the four largest skinning weights per vertex.
        """
        from hmmr.cli import console
        from hmmr.cli_common import settings_for
        from model.export import FORMATS, export_motion
        from model.export.predictions import PredictionsError, body_model_for, track_parameters

        if format is None:
            format = ExportFormat(FORMATS.get(out.suffix.lower(), "bvh")) if out else ExportFormat.bvh
        if out is None:
            folder = predictions if predictions.is_dir() else predictions.parent
            out = folder / f"track_{track}{SUFFIX[format]}"
        elif out.suffix.lower() != SUFFIX[format]:
            console.print(f"[red]{out}: a {format.value} file must end in {SUFFIX[format]}[/red]")
            raise typer.Exit(2)
        try:
            params = track_parameters(predictions, track)
            body = body_model_for(params.meta, settings_for(home), smpl)
        except PredictionsError as exc:
            console.print(f"[red]not exported:[/red] {exc}")
            raise typer.Exit(1) from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        export_motion(out, params.pose, params.shape, params.transl if translation else None, params.fps, body, units=units.value)
        console.print(f"wrote {out}: track {track}, {len(params.frames)} frames (video frames {params.frames[0]}-{params.frames[-1]}) "
                      f"at {params.fps:g} fps, {body.kind} body model")
