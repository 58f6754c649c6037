"""The training loop: deterministic batches per step, logs (CSV + TensorBoard), checkpoints, resume.

A run lives in one folder: ``last.pt`` (the latest checkpoint), ``metrics.csv`` (one row per logged
step: the step, its wall-clock time, every loss), ``tb/`` (TensorBoard). Batch ``s`` is always the same windows with the same
augmentation: epoch ``e = s // batches_per_epoch`` shuffles with ``(seed, e)``, and the dataset draws its
augmentation from ``(seed, e, index)``. So a run killed after a checkpoint and resumed computes
exactly the steps the uninterrupted run would have (rows logged after that checkpoint are replaced).

When the dataset has windows with 3D ground truth and windows without (its ``has_3d`` array), each
batch takes ``mix_3d`` of its windows from the first kind and the rest from the second, as the paper
does (half Human3.6M, half 2D-only); each kind is shuffled on its own per epoch, and an epoch ends
when either runs out.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from model.train import Trainer

CHECKPOINT = "last.pt"
METRICS = "metrics.csv"


@dataclass(frozen=True)
class FitConfig:
    """steps: total optimisation steps; checkpoint_every / log_every: in steps; seed: batch order and
    augmentation; num_workers: DataLoader worker processes (0: load in this process); mix_3d: share
    of each batch taken from windows with 3D ground truth when both kinds exist (None: no mixing)."""

    steps: int = 1000
    checkpoint_every: int = 200
    log_every: int = 1
    seed: int = 0
    num_workers: int = 0
    mix_3d: float | None = 0.5


def _mix(dataset: Dataset, batch_size: int, mix_3d: float | None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(windows with 3D, windows without, how many of the first per batch), when the batches mix."""
    has_3d = getattr(dataset, "has_3d", None)
    if mix_3d is None or has_3d is None or not 0 < mix_3d < 1 or has_3d.all() or not has_3d.any():
        return None
    n3 = min(max(int(round(mix_3d * batch_size)), 1), batch_size - 1)
    return np.flatnonzero(has_3d), np.flatnonzero(~has_3d), n3


def epoch_batches(n_windows: int, batch_size: int, seed: int, epoch: int,
                  mix: tuple[np.ndarray, np.ndarray, int] | None = None) -> list[list[int]]:
    """The batches (window indices) of one epoch: a shuffle by ``(seed, epoch)``, or with ``mix``
    (see :func:`_mix`) a shuffle of each kind, ``mix[2]`` windows of the first kind per batch."""
    rng = np.random.default_rng([seed, epoch])
    if mix is None:
        order = rng.permutation(n_windows)
        return [order[b * batch_size:(b + 1) * batch_size].tolist() for b in range(n_windows // batch_size)]
    with_3d, without, n3 = rng.permutation(mix[0]), rng.permutation(mix[1]), mix[2]
    n2 = batch_size - n3
    return [with_3d[b * n3:(b + 1) * n3].tolist() + without[b * n2:(b + 1) * n2].tolist()
            for b in range(min(len(with_3d) // n3, len(without) // n2))]


def step_batches(dataset: Dataset, batch_size: int, *, seed: int, start_step: int, num_workers: int = 0,
                 mix_3d: float | None = None) -> Iterator[dict]:
    """Batches for steps ``start_step, start_step + 1, ...`` (see the module docstring). The dataset
    needs ``set_epoch`` if it augments; the last partial batch of an epoch is dropped."""
    mix = _mix(dataset, batch_size, mix_3d)
    per_epoch = len(epoch_batches(len(dataset), batch_size, seed, 0, mix))
    if per_epoch == 0:
        raise ValueError(f"{len(dataset)} training windows: fewer than one batch of {batch_size}"
                         + (f" ({len(mix[0])} with 3D, {len(mix[1])} without, mixed {mix[2]}:{batch_size - mix[2]})" if mix else ""))
    step = start_step
    while True:
        epoch, first = divmod(step, per_epoch)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        batches = epoch_batches(len(dataset), batch_size, seed, epoch, mix)[first:]
        loader = DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)
        for batch in loader:
            yield batch
            step += 1


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of a run's ``metrics.csv`` (strings, as written), oldest first; [] before the first."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


class TrainLog:
    """``metrics.csv`` and TensorBoard scalars of one run folder, resumed after step ``start_step``
    (the checkpoint's: its rows stay, later ones are dropped and logged again)."""

    def __init__(self, run_dir: Path, start_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.path = Path(run_dir) / METRICS
        rows = read_metrics(run_dir)
        self.columns = list(rows[0]) if rows else []
        self._rows = [r for r in rows if int(r["step"]) <= start_step]  # after the checkpoint: redone
        self._rewrite()
        self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=start_step + 1)

    def _rewrite(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns or ["step"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self._rows)
        tmp.replace(self.path)

    def write(self, step: int, values: dict[str, float]) -> None:
        """One row: the step, ``wall_s`` (Unix time, for throughput), every loss."""
        row = {"step": step, "wall_s": f"{time.time():.3f}", **{k: f"{v:.6g}" for k, v in values.items()}}
        if set(row) - set(self.columns):  # a loss appears (e.g. 3D data): widen the file
            self.columns = list(dict.fromkeys([*self.columns, *row]))
            self._rows.append(row)
            self._rewrite()
        else:
            self._rows.append(row)
            with self.path.open("a", newline="") as fh:
                csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore").writerow(row)
        for k, v in values.items():
            self.tb.add_scalar(f"loss/{k}", v, step)

    def close(self) -> None:
        self.tb.close()


def fit(trainer: Trainer, dataset: Dataset, run_dir: Path, cfg: FitConfig, *, resume: bool = True,
        extra: dict | None = None, on_log: Callable[[int, dict], None] | None = None, progress: bool = True) -> dict:
    """Train until ``cfg.steps``; resumes from ``run_dir/last.pt`` when it exists (and ``resume``).
    ``extra`` is stored in every checkpoint (e.g. the warehouse snapshot and query). Returns the last
    logged losses, with ``step``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / CHECKPOINT
    if resume and ckpt.is_file():
        trainer.load(ckpt)
    else:
        torch.manual_seed(cfg.seed)
    start = trainer.step_count
    log = TrainLog(run_dir, start)
    last: dict = {"step": start}
    batches = step_batches(dataset, trainer.cfg.batch_size, seed=cfg.seed, start_step=start, num_workers=cfg.num_workers,
                           mix_3d=cfg.mix_3d)
    try:
        with tqdm(total=cfg.steps, initial=start, desc="train", unit="step", disable=not progress) as bar:
            while trainer.step_count < cfg.steps:
                values = trainer.step(next(batches))
                step = trainer.step_count  # steps done
                if step % cfg.log_every == 0 or step == cfg.steps:
                    log.write(step, values)
                    last = {"step": step, **values}
                    if on_log:
                        on_log(step, values)
                    bar.set_postfix(kp=f"{values['kp']:.3f}", total=f"{values['total']:.3f}")
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    trainer.save(ckpt, extra=extra)
                bar.update()
    finally:
        log.close()
    return last
