"""``hmmr train`` and ``hmmr evaluate``: the HMMR model's Prefect flows from the command line.

(No ``from __future__ import annotations`` here: typer evaluates the ``--home`` option type, which
is passed in by :func:`register`.)"""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer, home_opt) -> None:
    """Add the model commands to ``app``; ``home_opt`` is the CLI's shared ``--home`` option type."""

    @app.command()
    def train(
        query: Annotated[str, typer.Option(help="SQL over training_windows choosing the windows (T = 20 frames).")] = "SELECT * FROM training_windows WHERE visible_fraction >= 0.5",
        steps: Annotated[int, typer.Option(help="Optimisation steps (batches of 8 windows).")] = 1000,
        run_dir: Annotated[Optional[Path], typer.Option(help="Run folder (checkpoint, metrics.csv, tb/). An existing one resumes. Default HOME/runs/<id>.")] = None,
        checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
        single_frame: Annotated[bool, typer.Option("--single-frame", help="Train the paper's single-frame baseline (no temporal encoder).")] = False,
        smpl: Annotated[Optional[Path], typer.Option(help="SMPL model file (.pkl or converted .npz); default HMMR_SMPL_PATH, else the open body model.")] = None,
        device: Annotated[str, typer.Option(help="auto (cuda when available), cpu or cuda[:N].")] = "auto",
        seed: Annotated[int, typer.Option(help="Batch order and augmentation seed.")] = 0,
        config: Annotated[Optional[str], typer.Option(help='JSON overrides of the model config, e.g. \'{"lr_encoder": 1e-4}\'.')] = None,
        mix_3d: Annotated[float, typer.Option("--mix-3d", min=0.0, max=1.0, help="When some windows have 3D ground truth (hmmr mocap views) "
                                              "and some not: the share of each batch with 3D (the paper: half). 0 or 1: no mixing.")] = 0.5,
        progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
        home: home_opt = None,
    ) -> None:
        """Train HMMR (runs as the Prefect flow 'train'): 2D losses on the windows' keypoints (3D joint and SMPL
        losses where a window has 3D ground truth), the dynamics heads and the hallucinator, Adam with the
        paper's rates; checkpoints resume after a kill."""
        from flows.train import train as train_flow
        from hmmr.cli import console
        from hmmr.cli_common import settings_for

        result = train_flow(query=query, home=str(settings_for(home).home.resolve()), run_dir=str(run_dir) if run_dir else None,
                            steps=steps, checkpoint_every=checkpoint_every, single_frame=single_frame,
                            smpl=str(smpl) if smpl else None, device=device, seed=seed,
                            config=json.loads(config) if config else None, progress=progress, mix_3d=mix_3d)
        console.print(f"trained to step {result['step']} on {result['windows']} windows (snapshot {result['snapshot']}): "
                      f"total loss {result.get('total', float('nan')):.4f}, 2D keypoint loss {result.get('kp', float('nan')):.4f}\n"
                      f"checkpoint: {Path(result['run_dir']) / 'last.pt'}")

    @app.command()
    def evaluate(
        checkpoint: Annotated[Path, typer.Argument(help="A checkpoint written by hmmr train (RUN_DIR/last.pt).", exists=True, dir_okay=False)],
        query: Annotated[str, typer.Option(help="SQL returning video_id, track_id of the tracks to score.")] = "SELECT video_id, track_id FROM curated_tracks",
        smpl: Annotated[Optional[Path], typer.Option(help="SMPL model file; default HMMR_SMPL_PATH, else the open body model.")] = None,
        device: Annotated[str, typer.Option(help="auto (cuda when available), cpu or cuda[:N].")] = "auto",
        home: home_opt = None,
    ) -> None:
        """Score a checkpoint with the paper's protocol (sliding windows T=20, pad 6, stride 8): PCK@0.05,
        acceleration, and 3D errors where ground truth exists, for the present, the past/future heads
        and the constant baseline (runs as the Prefect flow 'evaluate')."""
        from flows.evaluate import evaluate as evaluate_flow
        from hmmr.cli import _print, OutputFormat
        from hmmr.cli_common import settings_for

        result = evaluate_flow(checkpoint=str(checkpoint), query=query, home=str(settings_for(home).home.resolve()),
                               smpl=str(smpl) if smpl else None, device=device)
        rows = [{"metric": k, "value": f"{v:.4g}"} for k, v in sorted(result["metrics"].items())]
        _print(rows, ["metric", "value"], OutputFormat.table,
               title=f"{result['model']} model, step {result['step']}, {result['tracks']} tracks ({result['frames']} frames)")
