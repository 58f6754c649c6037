"""The paper's two temporal claims, measured on synthetic views of CMU motion capture held out by subject.

Kanazawa et al. 2019 report that the temporal model's 3D acceleration error is 56 % below the
single-frame model's (Table 2: 37.4 -> 16.4 mm/frame^2 on 3DPW) and that its dynamics heads predict
the pose 5 frames away better than copying the present pose (Table 5: PA-MPJPE past / future 65.0 /
65.3 mm against 68.6 / 69.3 for the constant baseline). Neither number can be checked without 3D
ground truth; this script makes it from CMU mocap, which is free for any use:

1. import the CMU BVH files (``hmmr import bvh``: 30 fps, split by subject: subject 131 is test,
   01, 02 and 12 train for the six shared files) and fit the open body model to each
   (``hmmr mocap fit``);
2. film each fit with random cameras and MediaPipe-like noise (``hmmr mocap views``): ``--train-views``
   per train sequence, ``--test-views`` per test sequence, curated like harvested tracks;
3. train the temporal model and the single-frame baseline (``HMMRConfig(temporal=False)``) from the
   same initial weights and batches on the train views: the keypoint encoder (no images), the paper's
   architecture at ``--width`` features instead of 2048 so it trains on CPU, every 3D loss (LSP joints
   and SMPL parameters) on every window;
4. score both on the whole test tracks with the paper's protocol (sliding windows, ``model.evaluate``)
   and print the measured numbers beside the paper's.

    .venv/bin/python benchmarks/claims_3d.py [--steps 2000] [--body-home H] [--bvh DIR]

``--body-home``: an HMMR_HOME whose ``body/`` holds the built open body model (else it is built, a few
minutes). The numbers come from one run; the data and sizes are small (a few thousand frames), so read
them as a check of direction and rough size, not of the paper's exact values.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from hmmr.prefect_env import configure

configure()

REPO = Path(__file__).resolve().parents[1]
SHARED_BVH = Path("/work/shared/data/mocap/cmu_bvh")
PAPER = {"accel_error": (37.4, 16.4), "pa_mpjpe_dt-5": 65.0, "pa_mpjpe_dt+5": 65.3, "pa_mpjpe_const-5": 68.6, "pa_mpjpe_const+5": 69.3}
SPLIT = "json_extract_string(tags, '$.split')"


def evaluate(settings, trainer, query: str) -> tuple[dict[str, float], int, int]:
    """Mean-over-tracks metrics of ``trainer``'s model on the kept tracks ``query`` selects."""
    from flows.evaluate import track_ground_truth
    from model.evaluate import predict_track, summarize, track_metrics
    from warehouse.catalog import read_only_query

    tracks = read_only_query(settings, f"SELECT video_id, track_id, n_frames FROM curated_tracks WHERE {query} AND n_frames >= 20 "
                                       "ORDER BY 1, 2").to_pylist()
    per_track = []
    for t in tracks:
        kps, joints_3d = track_ground_truth(settings, t["video_id"], t["track_id"], t["n_frames"])
        pred = predict_track(trainer.model, trainer.skeleton, kps)
        per_track.append(track_metrics(pred, kps, joints_3d, trainer.cfg.delta_t, trainer.cfg.visible_conf))
    return summarize(per_track), len(tracks), sum(t["n_frames"] for t in tracks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000, help="training steps of each model (batches of 8 windows x 20 frames)")
    ap.add_argument("--width", type=int, default=256, help="feature and hidden width (the paper: 2048 features, 1024 hidden)")
    ap.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (the paper's 1e-5 fine-tunes a pretrained ResNet)")
    ap.add_argument("--train-views", type=int, default=8)
    ap.add_argument("--test-views", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bvh", type=Path, default=SHARED_BVH if SHARED_BVH.is_dir() else REPO / "tests" / "data" / "cmu_bvh")
    ap.add_argument("--body-home", type=Path, default=None)
    ap.add_argument("--home", type=Path, default=None, help="HMMR_HOME to build the data in (default: a new temporary one)")
    args = ap.parse_args()
    # one intra-op thread: on a shared machine two threads stall each other at every small op (measured
    # here: 0.17 s a step with one thread, up to 4.7 s with two while another process ran)
    torch.set_num_threads(1)

    from flows.mocap import fit_sequences
    from flows.train import mean_theta
    from hmmr.config import Settings
    from model.body import load_body_model
    from model.config import HMMRConfig
    from model.fit import FitConfig, fit
    from model.skeleton import KeypointSkeleton
    from model.train import Trainer
    from pose_harvest.detector_noise import MEDIAPIPE_NOISE
    from warehouse.crops import Augment
    from warehouse.importers.bvh import import_bvh
    from warehouse.mocap.fits import read_fits
    from warehouse.mocap.views import store_views
    from warehouse.torch_dataset import WindowDataset

    home = args.home or Path(tempfile.mkdtemp(prefix="hmmr-claims-3d-"))
    home.mkdir(parents=True, exist_ok=True)
    if args.body_home and not (home / "body").exists():
        (home / "body").symlink_to((args.body_home / "body").resolve(), target_is_directory=True)
    settings = Settings(home=home)
    t0 = time.perf_counter()
    imported = import_bvh([args.bvh], settings)
    fits = fit_sequences(settings)
    stored = read_fits(settings)
    for split, count in (("train", args.train_views), ("test", args.test_views)):
        store_views(settings, [f for f in stored if f.split == split], MEDIAPIPE_NOISE, views=count, seed=args.seed)
    data_s = time.perf_counter() - t0
    print(f"data: {len(imported.sequences)} CMU sequences in {home}, fitted in {sum(f.seconds for f in fits):.0f} s "
          f"(mean joint error {', '.join(f'{f.sequence_id} {f.mean_error_mm:.1f} mm' for f in fits)}); "
          f"{args.train_views} views per train and {args.test_views} per test sequence; {data_s:.0f} s in all", flush=True)

    body = load_body_model(settings)
    train = WindowDataset(settings, f"SELECT * FROM training_windows WHERE {SPLIT} = 'train' AND visible_fraction >= 0.5",
                          coords="crop", augment=Augment(), seed=args.seed)
    subjects = {s.sequence_id: (s.subject, s.split) for s in imported.sequences}
    print(f"train: {len(train)} windows ({int(train.has_3d.sum())} with 3D) of subjects "
          f"{sorted({v[0] for v in subjects.values() if v[1] == 'train'})}; test subjects "
          f"{sorted({v[0] for v in subjects.values() if v[1] == 'test'})}", flush=True)
    width = {"feature_dim": args.width, "keypoint_hidden": args.width, "ief_hidden": args.width, "disc_hidden": max(args.width // 2, 32),
             "lr_encoder": args.lr}
    results, seconds = {}, {}
    for name, temporal in (("single-frame", False), ("temporal", True)):
        cfg = HMMRConfig(**width, temporal=temporal)
        torch.manual_seed(args.seed)  # the same initial weights where the two models share modules
        trainer = Trainer(cfg, KeypointSkeleton.from_body_model(body), device=torch.device("cpu"), mean_theta=mean_theta(body))
        t1 = time.perf_counter()
        last = fit(trainer, train, home / "runs" / name, FitConfig(steps=args.steps, checkpoint_every=args.steps, log_every=50,
                                                                   seed=args.seed), resume=False, progress=False)
        seconds[name] = time.perf_counter() - t1
        results[name], n_tracks, n_frames = evaluate(settings, trainer, f"{SPLIT} = 'test'")
        print(f"{name}: {args.steps} steps in {seconds[name]:.0f} s (last losses: kp {last['kp']:.3f}, joints_3d "
              f"{last.get('joints_3d', float('nan')):.4f}); evaluated on {n_tracks} test tracks, {n_frames} frames", flush=True)

    single, temporal = results["single-frame"], results["temporal"]
    rows = [("accel_error", "acceleration error (mm/frame^2)"), ("accel", "acceleration of the prediction (mm/frame^2)"),
            ("mpjpe", "MPJPE (mm)"), ("pa_mpjpe", "PA-MPJPE (mm)"), ("pck", "PCK@0.05 (2D)")]
    print(f"\nClaim 1: temporal vs single-frame, {args.steps} training steps each, test subject(s) held out")
    print(f"{'metric':46s} {'single-frame':>13s} {'temporal':>10s} {'change':>8s}   paper (single -> temporal)")
    for key, label in rows:
        a, b = single.get(key, float("nan")), temporal.get(key, float("nan"))
        paper = f"{PAPER[key][0]} -> {PAPER[key][1]} ({(PAPER[key][1] / PAPER[key][0] - 1):+.0%})" if key in PAPER else ""
        print(f"{label:46s} {a:13.2f} {b:10.2f} {(b / a - 1) if a else float('nan'):+8.1%}   {paper}")
    print("\nClaim 2: dynamics heads vs the constant baseline (temporal model), PA-MPJPE (mm) of the pose 5 frames away")
    print(f"{'':10s} {'head':>8s} {'constant':>9s} {'gain':>7s}   paper (head / constant)")
    for dt, label in ((-5, "past"), (5, "future")):
        head, const = temporal[f"pa_mpjpe_dt{dt:+d}"], temporal[f"pa_mpjpe_const{dt:+d}"]
        print(f"{label:10s} {head:8.2f} {const:9.2f} {const - head:+7.2f}   {PAPER[f'pa_mpjpe_dt{dt:+d}']} / {PAPER[f'pa_mpjpe_const{dt:+d}']} "
              f"({PAPER[f'pa_mpjpe_const{dt:+d}'] - PAPER[f'pa_mpjpe_dt{dt:+d}']:+.1f})")
    out = home / "claims_3d.json"
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "train_windows": len(train),
                               "seconds": seconds, "data_seconds": data_s, "metrics": results}, indent=1, default=float))
    print(f"\nwidth {args.width}, lr {args.lr}, {len(train)} train windows, training {sum(seconds.values()):.0f} s, "
          f"total {time.perf_counter() - t0:.0f} s; all metrics in {out}")


if __name__ == "__main__":
    main()
