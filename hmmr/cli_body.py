"""``hmmr body``: the body model (SMPL from the user's licensed file, or the open anny-derived model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from hmmr.cli_common import settings_for

console = Console()
body_app = typer.Typer(
    help="Body model: SMPL from your licensed file (--smpl / HMMR_SMPL_PATH), else the open model derived from anny.",
    no_args_is_help=True,
)

HomeOpt = Annotated[
    Optional[Path],
    typer.Option("--home", envvar="HMMR_HOME", help="Data root; the open model is cached in HOME/body/. Default ./hmmr-data."),
]
SmplOpt = Annotated[
    Optional[Path],
    typer.Option("--smpl", help="SMPL model file (.pkl as downloaded, or its convert-smpl .npz). Default: $HMMR_SMPL_PATH, else the open model."),
]


@body_app.command("convert-smpl")
def convert_smpl_cmd(
    src: Annotated[Path, typer.Argument(help="The official SMPL .pkl (chumpy objects and all).", exists=True, dir_okay=False)],
    dst: Annotated[Path, typer.Argument(help="The .npz to write (plain numpy arrays).")],
) -> None:
    """Rewrite an official SMPL pickle without chumpy, as an .npz that smplx and hmmr load."""
    from model.body import SmplFileError, convert_smpl

    try:
        shapes = convert_smpl(src, dst)
    except SmplFileError as exc:
        console.print(f"[red]not converted:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"wrote {dst}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


@body_app.command()
def build(home: HomeOpt = None, force: Annotated[bool, typer.Option("--force", help="Rebuild even if it is cached.")] = False) -> None:
    """Derive the open SMPL-format model from anny (offline, ~2-4 min) and cache it under HOME/body/."""
    from model.body import build_open_model, open_model_facts, open_model_path

    settings = settings_for(home)
    path = open_model_path(settings.home)
    if force or not path.is_file():
        build_open_model(settings.home, log=console.print)
    else:
        console.print("already built (--force to rebuild)")
    facts = open_model_facts(path)
    console.print(f"open model: {path}")
    for key, value in facts.items():
        console.print(f"  {key}: {round(value, 4) if isinstance(value, float) else value}")


@body_app.command()
def info(home: HomeOpt = None, smpl: SmplOpt = None) -> None:
    """Which body model is in use, and its vertices, joints, shape components and keypoint regressor."""
    from model.body import load_body_model, open_model_facts

    model = load_body_model(settings_for(home), smpl_path=smpl, log=console.print)
    name = "SMPL (licensed file)" if model.kind == "smpl" else "open model derived from anny (Apache-2.0)"
    console.print(f"model: {name}\nfile: {model.source}")
    console.print(f"vertices: {model.n_vertices}, faces: {model.faces.shape[0]}, joints: 24 (SMPL order), "
                  f"shape components: {model.layer.num_betas}")
    console.print(f"keypoints: 25 HMMR (LSP-14 from them), {model.keypoint_source}")
    if model.kind == "open":
        facts = open_model_facts(model.source)
        console.print(f"height at the mean shape: {facts['height_mean_shape']:.3f} m; joint regressor residual "
                      f"{facts['joint_residual_mm']:.2f} mm (max {facts['joint_residual_max_mm']:.1f}) on held-out shapes")


def register(app: typer.Typer) -> None:
    """Add the ``hmmr body`` command group to ``app``."""
    app.add_typer(body_app, name="body")
