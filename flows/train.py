"""The ``train`` flow: training windows from a warehouse query -> the HMMR model -> checkpoints.

Thin on purpose: the data is ``warehouse.torch_dataset.WindowDataset`` (pinned to the lakehouse
snapshot it read, which every checkpoint records), the body model ``model.body.load_body_model``
(SMPL if the user has it, else the open default), the loop ``model.fit.fit``. Training runs as one
task per checkpoint interval, so the UI shows where a run is and a crashed interval restarts from the
last checkpoint. Artifacts: a progress bar while it runs, and the loss curves (a table of the logged
steps) at the end.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import torch
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import triggers
from flows.harvest_report import Progress
from hmmr.config import Settings
from model.body import load_body_model
from model.config import HMMRConfig
from model.fit import CHECKPOINT, FitConfig, fit, read_metrics
from model.skeleton import KeypointSkeleton
from model.train import Trainer, pick_device
from warehouse.crops import Augment
from warehouse.torch_dataset import WindowDataset

DEFAULT_QUERY = "SELECT * FROM training_windows WHERE visible_fraction >= 0.5"
CURVE_ROWS = 40  # rows of the loss-curve artifact


def mean_theta(body) -> torch.Tensor:
    """The IEF start ``(85,)``: camera (0.9, 0, 0), the body model's mean pose with the global rotation
    set to (pi, 0, 0) (upright in image coordinates, as the official code does), its mean shape."""
    pose = body.mean_pose.detach().cpu().clone()
    pose[:3] = torch.tensor([torch.pi, 0.0, 0.0])
    return torch.cat([torch.tensor([0.9, 0.0, 0.0]), pose, body.mean_betas.detach().cpu()])


@task(name="load-windows", cache_policy=NO_CACHE)
def load_windows(settings: Settings, query: str, cfg: HMMRConfig, seed: int, augment: bool) -> WindowDataset:
    data = WindowDataset(settings, query, T=cfg.seq_len, coords="crop", augment=Augment() if augment else None, seed=seed,
                         frames=cfg.encoder == "resnet50")
    if len(data) < cfg.batch_size:
        raise ValueError(f"the query gives {len(data)} training windows, fewer than one batch of {cfg.batch_size}: "
                         f"harvest more video or loosen the query ({query})")
    return data


@task(name="train-steps", cache_policy=NO_CACHE, task_run_name="train-steps-to-{until}", retries=1)
def train_steps(trainer: Trainer, data: WindowDataset, run_dir: Path, until: int, fit_cfg: FitConfig, extra: dict,
                progress: Progress, progress_bar: bool) -> dict:
    """Steps up to ``until`` (a checkpoint at the end); a retry resumes from the last checkpoint."""
    cfg = FitConfig(**{**fit_cfg.__dict__, "steps": until})
    return fit(trainer, data, run_dir, cfg, resume=True, extra=extra, progress=progress_bar,
               on_log=lambda step, _: progress.set(100.0 * step / fit_cfg.steps))


def _curves_markdown(run_dir: Path) -> tuple[str, list[dict]]:
    rows = read_metrics(run_dir)
    keep = rows[:: max(1, len(rows) // CURVE_ROWS)] + ([rows[-1]] if rows else [])
    cols = [c for c in ("step", "total", "kp", "kp_dt-5", "kp_dt+5", "joints_3d", "smpl", "hal_kp", "hallucinate", "const_shape",
                        "shape_prior") if rows and c in rows[0]]
    table = [dict((c, r.get(c)) for c in cols) for r in dict((r["step"], r) for r in keep).values()]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in table]
    return "\n".join(lines), table


@flow(name="train", log_prints=True)
def train(
    query: str = DEFAULT_QUERY,
    home: str | None = None,
    run_dir: str | None = None,
    steps: int = 1000,
    checkpoint_every: int = 200,
    log_every: int = 1,
    seed: int = 0,
    single_frame: bool = False,
    augment: bool = True,
    smpl: str | None = None,
    device: str = "auto",
    num_workers: int = 0,
    mix_3d: float | None = 0.5,
    config: dict | None = None,
    progress: bool = True,
) -> dict:
    """Train HMMR on the windows ``query`` selects (SQL over ``training_windows``).

    run_dir: the run folder (default ``HOME/runs/<new id>``); an existing one resumes from its last
    checkpoint. single_frame: the paper's single-frame baseline (no f_movie). smpl: an SMPL model file
    (default ``HMMR_SMPL_PATH``, else the open body model). device: ``auto`` picks cuda when present.
    config: overrides of :class:`model.config.HMMRConfig` (the paper's defaults), e.g. ``{"lr_encoder": 1e-4}``.
    mix_3d: when the windows include some with 3D ground truth (``track_frames_3d``) and some without,
    the share of each batch drawn from the first kind (the paper's half-and-half; None: plain shuffle).
    Returns the run folder, the last step's losses and the snapshot the data came from.
    """
    settings = Settings.at(home)
    logger = get_run_logger()
    run = Path(run_dir) if run_dir else settings.home / "runs" / uuid.uuid4().hex[:8]
    cfg = HMMRConfig(**{**(config or {}), "temporal": not single_frame})
    dev = pick_device(device)
    data = load_windows(settings, query, cfg, seed, augment)
    body = load_body_model(settings, smpl_path=smpl, device="cpu", log=logger.info)
    torch.manual_seed(seed)  # the initial weights
    trainer = Trainer(cfg, KeypointSkeleton.from_body_model(body), device=dev, mean_theta=mean_theta(body))
    fit_cfg = FitConfig(steps=steps, checkpoint_every=checkpoint_every, log_every=log_every, seed=seed, num_workers=num_workers,
                        mix_3d=mix_3d)
    extra = {"query": query, "snapshot": data.snapshot, "windows": len(data), "windows_3d": int(data.has_3d.sum()),
             "body": body.kind, "body_source": str(body.source)}
    if (run / CHECKPOINT).is_file():
        trainer.load(run / CHECKPOINT)
    logger.info("training %s on %d windows of snapshot %s (%s body model, %s) in %s, from step %d",
                "the single-frame baseline" if single_frame else "HMMR", len(data), data.snapshot, body.kind, dev, run, trainer.step_count)
    bar = Progress(total=100, key="train-progress", description=f"Training {run.name}: percent of {steps} steps")
    last: dict = {"step": trainer.step_count}
    for until in [m for m in range(checkpoint_every, steps, checkpoint_every) if m > trainer.step_count] + [steps]:
        last = train_steps(trainer, data, run, until, fit_cfg, extra, bar, progress)
    markdown, table = _curves_markdown(run)
    create_table_artifact(key="train-loss-curves", table=table, description=f"Losses of run {run.name} (every logged step, subsampled)")
    create_markdown_artifact(
        key="train-summary",
        markdown=f"# Train {run.name}\n\n{len(data)} windows, snapshot {data.snapshot}, body model {body.kind}, "
                 f"{'single-frame baseline' if single_frame else 'temporal HMMR'}, device {dev}\n\n"
                 f"Checkpoint: `{run / CHECKPOINT}`\n\n## Loss curves\n\n{markdown}\n",
        description="Training run: data, model and loss curves",
    )
    triggers.announce_model(settings, run / CHECKPOINT)  # starts evaluate/after-train
    return {"run_dir": str(run), "snapshot": data.snapshot, "windows": len(data), **last}
