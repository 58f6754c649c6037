"""Training benchmark: steps per second and peak memory of the paper-size model, in and out of the flow.

Measured in this one run, on the real sample ``pose2sim_single_cam01`` (its OpenPose JSON imported
into a fresh lakehouse: 2 kept tracks, 125 training windows) with the open body model:

* plain: ``Trainer.step`` on batches prepared in memory (8 windows x T = 20), the networks alone;
* flow: the ``train`` flow for the same number of steps plus one (WindowDataset reads, logging to CSV
  and TensorBoard, Prefect task runs), timed per step from the wall clock of its first and last rows
  in metrics.csv, so start-up is reported apart;
* the overhead ratio flow / plain per step (target <= 1.1), and peak memory (max RSS on CPU,
  ``torch.cuda.max_memory_allocated`` on GPU).

    .venv/bin/python benchmarks/train.py [--steps 20] [--device auto|cpu|cuda] [--encoder keypoints|resnet50]

``--encoder resnet50`` trains from the 224x224 crops (decoded from the video) instead of the keypoints:
meant for a GPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from hmmr.prefect_env import configure

configure()

REPO = Path(__file__).resolve().parents[1]


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--encoder", default="keypoints", choices=("keypoints", "resnet50"))
    ap.add_argument("--home", type=Path, default=None, help="HMMR_HOME holding a built open body model (default: a new one)")
    args = ap.parse_args()

    from flows.train import load_windows, mean_theta, train
    from hmmr.config import Settings
    from model.body import load_body_model
    from model.config import HMMRConfig
    from model.fit import read_metrics
    from model.skeleton import KeypointSkeleton
    from model.train import Trainer, pick_device
    from warehouse.importers.openpose import import_openpose

    home = args.home or Path(tempfile.mkdtemp(prefix="hmmr-bench-train-"))
    settings = Settings(home=home)
    import_openpose(REPO / "tests" / "data" / "openpose_pose2sim_cam01_body25b", str(REPO / "samples" / "pose2sim_single_cam01.mp4"), settings)
    t = time.perf_counter()
    body = load_body_model(settings, device="cpu", log=lambda line: None)
    body_s = time.perf_counter() - t
    device = pick_device(args.device)
    cfg = HMMRConfig(encoder=args.encoder)
    query = "SELECT * FROM training_windows"
    data = load_windows.fn(settings, query, cfg, 0, True)
    batch = {k: torch.stack([data[i][k] for i in range(cfg.batch_size)]) for k in ("kps",) + (("images",) if args.encoder == "resnet50" else ())}
    trainer = Trainer(cfg, KeypointSkeleton.from_body_model(body), device=device, mean_theta=mean_theta(body))
    trainer.step(batch)  # warm-up (allocations, kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(args.steps):
        trainer.step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    plain = (time.perf_counter() - t) / args.steps
    params = sum(p.numel() for p in trainer.model.parameters())

    run = home / "runs" / "bench"
    t = time.perf_counter()
    train(query=query, home=str(home), run_dir=str(run), steps=args.steps + 1, checkpoint_every=args.steps + 1,
          device=str(device), config={"encoder": args.encoder}, progress=False)
    flow_wall = time.perf_counter() - t
    rows = read_metrics(run)
    per_step_flow = (float(rows[-1]["wall_s"]) - float(rows[0]["wall_s"])) / (len(rows) - 1)  # step 1 is the warm-up
    print(json.dumps({"device": str(device), "encoder": args.encoder, "parameters": params}))
    print(f"open body model load/build: {body_s:.1f} s; {len(data)} windows, batch {cfg.batch_size} x T {cfg.seq_len}")
    print(f"plain Trainer.step:  {1 / plain:6.2f} steps/s ({plain:.3f} s/step)")
    print(f"train flow:          {1 / per_step_flow:6.2f} steps/s ({per_step_flow:.3f} s/step; "
          f"whole flow {flow_wall:.1f} s for {args.steps + 1} steps, start-up and the final checkpoint included)")
    print(f"overhead ratio flow / plain per step = {per_step_flow / plain:.2f}  (target <= 1.1)")
    print(f"peak memory: {peak_memory_mb(device):.0f} MB ({'CUDA allocated' if device.type == 'cuda' else 'max RSS of this process'})")


if __name__ == "__main__":
    main()
