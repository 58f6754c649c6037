"""Mocap into training data: fit the body model to stored sequences, then film the fits with synthetic cameras.

``fit_sequences``: ``mocap_frames`` joints -> :func:`model.body.fit_joints.fit_joints` ->
``mocap_fits`` / ``mocap_fit_frames`` (``hmmr mocap fit``). The next step, fits -> synthetic views
(``hmmr mocap views``), needs no model and lives in :func:`warehouse.mocap.views.store_views`. A plain
function, not a Prefect flow: seconds to a minute of CPU per sequence with nothing to schedule or retry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from hmmr.config import Settings
from model.body import load_body_model
from model.body.fit_joints import FitConfig, fit_joints
from model.skeleton import KeypointSkeleton
from warehouse.lake import Lake
from warehouse.mocap.fits import fit_tables, read_motions


@dataclass(frozen=True)
class FitSummary:
    """One fitted sequence: errors in mm (with / without placement corrections), per SMPL joint too."""

    sequence_id: str
    split: str | None
    n_frames: int
    mean_error_mm: float
    max_error_mm: float
    raw_mean_error_mm: float
    per_joint_mm: dict[str, float]
    iterations: int
    seconds: float


def fit_sequences(settings: Settings, ids: list[str] | None = None, *, smpl: str | None = None, cfg: FitConfig = FitConfig(),
                  device: str = "cpu", progress: Callable[[FitSummary], None] | None = None) -> list[FitSummary]:
    """Fit every stored sequence with joints (or those in ``ids``) and store each fit as soon as it is
    done (one transaction per sequence; fitting again replaces the rows)."""
    motions = read_motions(settings, ids)
    body = load_body_model(settings, smpl_path=smpl)
    skeleton = KeypointSkeleton.from_body_model(body)
    out = []
    with Lake(settings=settings) as lake:
        for motion in motions:
            fit = fit_joints(skeleton, motion.joints, motion.joint_names, cfg, device=device)
            tables = fit_tables(motion, fit, body_model=body.kind, body_source=str(body.source), config=dataclasses.asdict(cfg))
            lake.replace_rows(tables, key="sequence_id", message=f"mocap fit {motion.sequence_id}")
            summary = FitSummary(motion.sequence_id, motion.split, len(motion.frames), fit.mean_error_mm, fit.max_error_mm,
                                 float(fit.raw_error_mm.mean()), fit.per_joint_mm(), fit.iterations, fit.seconds)
            out.append(summary)
            if progress:
                progress(summary)
    return out

