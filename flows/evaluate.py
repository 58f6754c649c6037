"""The ``evaluate`` flow: a checkpoint on the tracks a warehouse query selects, with the paper's protocol.

Each track is predicted whole with sliding windows (T = 20, pad 6, stride 8, the central 8 kept:
``model.evaluate.predict_track``), then scored (``model.evaluate.track_metrics``) against its
keypoints, and against 3D ground truth where the warehouse has it; every metric is the mean over
tracks of the per-track nan-mean. The present frame, the past/future heads and the constant baseline
that copies the present are scored alike. Every read is pinned to one DuckLake snapshot. Results: rows
of the warehouse table ``evaluations`` (one per metric, named by checkpoint, query and snapshot), a
markdown and a table artifact, and a JSON file beside the checkpoint; the acceleration over time of
the longest tracks as PNGs in a folder beside it and in the markdown artifact ``evaluation-acceleration``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import triggers
from flows.plot_artifacts import publish_acceleration
from hmmr.config import Settings
from model.evaluate import predict_track, summarize, track_metrics
from model.networks import HMMR
from model.predict import load_predictor
from model.skeleton import KeypointSkeleton
from warehouse import schemas
from warehouse.catalog import read_only_query
from warehouse.lake import Lake, current_snapshot
from warehouse.torch_dataset import whole_track

DEFAULT_QUERY = "SELECT video_id, track_id FROM curated_tracks"
HEADLINE = ("pck", "accel", "mpjpe", "pa_mpjpe", "accel_error")


def track_ground_truth(settings: Settings, video_id: str, track_id: int, n_frames: int,
                       snapshot: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A whole track's keypoints ``(N, 25, 3)``, in its HMMR crops normalised to [-1, 1] (no augmentation),
    and its 3D ground truth ``(N, 14, 3)`` LSP joints in metres when ``track_frames_3d`` has every frame (else None)."""
    item = whole_track(settings, video_id, track_id, n_frames, at_version=snapshot)
    return item["kps"].numpy(), item["joints_3d"].numpy() if bool(item["has_3d"]) else None


@task(name="evaluate-track", cache_policy=NO_CACHE, task_run_name="evaluate-{video_id}-{track_id}")
def evaluate_track(model: HMMR, skeleton: KeypointSkeleton, settings: Settings, video_id: str, track_id: int,
                   n_frames: int, snapshot: int) -> dict[str, np.ndarray]:
    kps, joints_3d = track_ground_truth(settings, video_id, track_id, n_frames, snapshot)
    return track_metrics(predict_track(model, skeleton, kps), kps, joints_3d, model.cfg.delta_t, model.cfg.visible_conf)


def _table(summary: dict[str, float], delta_t: tuple[int, ...]) -> list[dict]:
    """Rows per head (present, each dt and its constant baseline), one column per metric."""
    heads = [("present", "")] + [(f"{'future' if dt > 0 else 'past'} {abs(dt)}", f"_dt{dt:+d}") for dt in delta_t] \
        + [(f"constant baseline {'+' if dt > 0 else '-'}{abs(dt)}", f"_const{dt:+d}") for dt in delta_t]
    rows = []
    for name, suffix in heads:
        row = {"head": name} | {m: summary.get(m + suffix) for m in HEADLINE if m + suffix in summary}
        if len(row) > 1:
            rows.append(row)
    return rows


def metric_unit(metric: str) -> str:
    """Unit of a metric name of :func:`model.evaluate.track_metrics` (suffixes ``_dt+5``, ``_const-5`` kept)."""
    base = metric.split("_dt")[0].split("_const")[0]
    return {"pck": "0-1", "accel": "mm/frame^2", "accel_error": "mm/frame^2"}.get(base, "mm")


def evaluation_rows(result: dict, checkpoint_sha256: str, snapshot: int) -> pa.Table:
    """The ``evaluations`` rows (one per metric) of one evaluation ``result`` (the flow's return value)."""
    evaluation_id = f"{checkpoint_sha256[:12]}-{hashlib.sha256(result['query'].encode()).hexdigest()[:12]}-s{snapshot}"
    metrics = sorted(result["metrics"].items())
    n = len(metrics)
    return schemas.to_arrow("evaluations", {
        "evaluation_id": [evaluation_id] * n, "checkpoint": [result["checkpoint"]] * n, "checkpoint_sha256": [checkpoint_sha256] * n,
        "step": [result["step"]] * n, "model": [result["model"]] * n, "query": [result["query"]] * n,
        "data_snapshot": [snapshot] * n, "n_tracks": [result["tracks"]] * n, "n_frames": [result["frames"]] * n,
        "metric": [k for k, _ in metrics], "value": [float(v) for _, v in metrics], "unit": [metric_unit(k) for k, _ in metrics],
        "evaluated_at": [datetime.fromisoformat(result["evaluated_at"]).replace(tzinfo=None)] * n,
    })


@task(name="store-evaluation", cache_policy=NO_CACHE, retries=2)
def store_evaluation(settings: Settings, result: dict, checkpoint_sha256: str, snapshot: int) -> str:
    """Write the evaluation into the warehouse table ``evaluations``; returns its ``evaluation_id``."""
    rows = evaluation_rows(result, checkpoint_sha256, snapshot)
    with Lake(settings=settings) as lake:
        lake.replace_rows({"evaluations": rows}, key="evaluation_id", message=f"evaluation of {result['checkpoint']}")
    return rows["evaluation_id"][0].as_py()


@flow(name="evaluate", log_prints=True)
def evaluate(checkpoint: str, query: str = DEFAULT_QUERY, home: str | None = None, smpl: str | None = None,
             device: str = "auto") -> dict:
    """Score ``checkpoint`` (a path, or ``latest``: the newest ``HOME/runs/*/last.pt``) on the tracks ``query`` selects (SQL returning ``video_id, track_id`` of
    kept tracks, e.g. over ``curated_tracks``). Returns the mean-over-tracks metrics (PCK in [0, 1],
    accelerations in mm/frame^2, errors in mm) and where they were written."""
    settings = Settings.at(home)
    logger = get_run_logger()
    if checkpoint == "latest":
        found = triggers.latest_checkpoint(settings)
        if found is None:
            raise FileNotFoundError(f"checkpoint 'latest': no model trained under {settings.home} (no runs/*/last.pt)")
        checkpoint = str(found)
    predictor = load_predictor(checkpoint, settings, smpl_path=smpl, device=device, log=logger.info)
    model, skeleton, cfg = predictor.model, predictor.skeleton, predictor.cfg
    snapshot = current_snapshot(settings)
    tracks = read_only_query(settings, f"SELECT q.video_id, q.track_id, t.n_frames FROM ({query}) q "
                                       "JOIN tracks t USING (video_id, track_id) WHERE t.kept ORDER BY 1, 2",
                             at_version=snapshot).to_pylist()
    if not tracks:
        raise ValueError(f"the query selects no kept track: {query}")
    tracks = [t for t in tracks if t["n_frames"] >= cfg.seq_len]
    per_track = [evaluate_track(model, skeleton, settings, t["video_id"], t["track_id"], t["n_frames"], snapshot) for t in tracks]
    summary = summarize(per_track)
    rows = _table(summary, cfg.delta_t)
    result = {"checkpoint": str(checkpoint), "step": predictor.step, "trained_on": predictor.extra, "query": query,
              "tracks": len(tracks), "frames": int(sum(t["n_frames"] for t in tracks)), "model": "single-frame" if not cfg.temporal else "temporal",
              "data_snapshot": snapshot, "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "metrics": summary}
    result["evaluation_id"] = store_evaluation(settings, result, hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest(), snapshot)
    out = Path(checkpoint).with_name(f"evaluation-{uuid.uuid4().hex[:8]}.json")
    out.write_text(json.dumps(result, indent=1, default=float))
    publish_acceleration(tracks, per_track, out.with_suffix(""))  # PNGs in evaluation-<id>/, artifact evaluation-acceleration
    create_table_artifact(key="evaluation-metrics", table=rows, description=f"{result['model']} model, {len(tracks)} tracks")
    cols = ["head", *[m for m in HEADLINE if any(m in r for r in rows)]]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if r.get(c) is None else (f"{r[c]:.4g}" if c != "head" else r[c]) for c in cols) + " |" for r in rows]
    create_markdown_artifact(
        key="evaluation-summary",
        markdown=f"# Evaluation of `{Path(checkpoint).name}` (step {predictor.step})\n\n{result['model']} model on {len(tracks)} tracks, "
                 f"{result['frames']} frames. PCK@0.05 after 2D alignment (0-1), accel = the prediction's own acceleration "
                 f"(mm/frame^2); 3D errors (mm) where ground truth exists. Data: snapshot {snapshot}.\n\n" + "\n".join(lines)
                 + f"\n\nWritten to `{out}` and to the warehouse table `evaluations` "
                 f"(`hmmr sql \"SELECT * FROM evaluations WHERE evaluation_id = '{result['evaluation_id']}'\"`)\n",
        description="Evaluation metrics per head",
    )
    logger.info("evaluated %d tracks: %s", len(tracks), {r["head"]: r for r in rows})
    return result | {"written_to": str(out)}
