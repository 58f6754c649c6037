"""Prediction benchmark: frames per second of every stage of ``hmmr predict`` on a real sample video.

Measured in this one run, stage after stage over the whole video (default ``samples/sports2d_demo.mp4``,
230 frames of 1768 x 994, two people), on ``cuda`` when there is one, else the CPU:

* decode + detection: ffmpeg to RGB and MediaPipe multi-person BlazePose on every frame (the harvest's
  ``detect_video``; its decoding overlaps detection, so the two are reported together and apart);
* tracking: gated Hungarian tracking and the HMMR curation (``track_and_curate``);
* model: the paper-size network (ResNet-free keypoint encoder, 2048 features; random weights unless
  ``--checkpoint``) over every kept track with the sliding windows (``predict_track``), in track-frames/s;
* mesh: the body model's vertices and joints for those frames (``pose_bodies``);
* rendering: the shaded meshes over every video frame (``MeshRenderer``: EGL, llvmpipe on the CPU or the GPU);
* encode: H.264 of the overlay (the time spent handing frames to ffmpeg and waiting for it to finish);
* end to end: video frames over the sum of every stage's time (one stage after another, as the flow
  runs them; the lakehouse write between tracking and the model is left out).

Printed beside published anchors (their hardware, not this machine's): VIBE about 29 fps end to end on
an RTX 2080 Ti; 4D-Humans' tracking (PHALP) about 1.8 fps on an RTX 4090.

    .venv/bin/python benchmarks/predict.py [--video PATH] [--checkpoint last.pt] [--device auto|cpu|cuda] [--home HOME]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from hmmr.prefect_env import configure

configure()

REPO = Path(__file__).resolve().parents[1]
ANCHORS = [("VIBE (Kocabas et al. 2020), end to end", "RTX 2080 Ti", 29.0),
           ("4D-Humans / PHALP tracking (Goel et al. 2023)", "RTX 4090", 1.8)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=REPO / "samples" / "sports2d_demo.mp4")
    ap.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint of hmmr train (default: the paper-size model, untrained)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--home", type=Path, default=None, help="HMMR_HOME holding a built open body model (default: a new one, built in ~3 min)")
    args = ap.parse_args()

    from hmmr.config import Settings
    from model.body import load_body_model
    from model.config import HMMRConfig
    from model.mesh_render import MeshRenderer
    from model.networks import HMMR
    from model.overlay import render_overlay
    from model.predict import Predictor, load_predictor, pose_bodies, predict_motion
    from model.skeleton import KeypointSkeleton
    from model.train import pick_device
    from pose_harvest.detections import detect_video
    from pose_harvest.detectors import get_detector
    from pose_harvest.tracks import track_and_curate
    from pose_harvest.video import probe
    from warehouse import harvest_tables
    from warehouse.lake import Lake, current_snapshot
    from warehouse.torch_dataset import whole_track

    scratch = Path(tempfile.mkdtemp(prefix="hmmr-bench-predict-"))
    if args.home:  # its built body model, in a fresh lakehouse
        (scratch / "body").symlink_to((args.home / "body").resolve(), target_is_directory=True)
    settings = Settings(home=scratch)
    settings.ensure_dirs()
    device = pick_device(args.device)
    info = probe(args.video)
    times: dict[str, float] = {}

    dets = detect_video(args.video, info, get_detector("mediapipe"), progress=False)
    times["decode"], times["detection"] = dets.decode_s, dets.detect_s
    t = time.perf_counter()
    tracked = track_and_curate(dets)
    times["tracking"] = time.perf_counter() - t
    video_id = "bench:predict"
    row = harvest_tables.base_video_row(video_id=video_id, source=str(args.video), url=args.video.resolve().as_uri(), tags={},
                                        run_id="bench", detector="mediapipe")
    row |= harvest_tables.probe_columns(info) | harvest_tables.summary_columns(dets, tracked)
    row |= {"status": "ok", "raw_path": str(args.video.resolve())}
    with Lake(settings=settings) as lake:
        lake.write_video(row, harvest_tables.video_tables(video_id, dets, tracked))
    kept = [t for t in tracked.tracks if t.kept]

    if args.checkpoint:
        pred = load_predictor(args.checkpoint, settings, device=args.device)
    else:
        body = load_body_model(settings, device="cpu")
        model = HMMR(HMMRConfig()).to(device).eval()
        pred = Predictor(model=model, body=body.to(device), skeleton=KeypointSkeleton.from_body_model(body).to(device),
                         device=device, checkpoint=Path("untrained"), step=0)
    snapshot = current_snapshot(settings)
    items = {t.track_id: whole_track(settings, video_id, t.track_id, t.n_frames, at_version=snapshot) for t in kept}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    motions, times["model"], times["mesh"] = {}, 0.0, 0.0
    for tid, item in items.items():
        sync()
        t = time.perf_counter()
        motions[tid] = predict_motion(pred, item["kps"].numpy(), item["affine"].numpy(), item["frames"].numpy(),
                                      item["has_detection"].numpy(), (info.width, info.height))
        sync()
        total = time.perf_counter() - t
        t = time.perf_counter()  # the mesh part of it, alone
        pose_bodies(pred.body, motions[tid].pose, motions[tid].shape)
        sync()
        times["mesh"] += time.perf_counter() - t
        times["model"] += max(total - (time.perf_counter() - t), 0.0)
    track_frames = sum(len(m.frames) for m in motions.values())
    overlay = scratch / "overlay.mp4"
    spent: dict[str, float] = {}
    n = render_overlay(args.video, overlay, motions, pred.faces, width=info.width, height=info.height, fps=info.fps,
                       resample=False, progress=False, timings=spent)
    times["decode"] += spent["decode"]
    times["rendering"], times["encode"] = spent["render"], spent["encode"]
    with MeshRenderer(pred.faces, 8, 8) as r:
        gl = r.gl_renderer

    frames = dets.n_frames
    print(f"{args.video.name}: {frames} frames {info.width}x{info.height}, {len(kept)} kept tracks ({track_frames} track-frames); "
          f"device {device}; renderer {gl}; torch threads {torch.get_num_threads()}")
    print(f"{'stage':<28}{'seconds':>9}{'frames/s':>11}   per")
    per = {"model": track_frames, "mesh": track_frames}
    for stage in ("decode", "detection", "tracking", "model", "mesh", "rendering", "encode"):
        count = per.get(stage, frames)
        unit = "track-frame" if stage in per else "video frame"
        print(f"{stage:<28}{times[stage]:>9.2f}{count / max(times[stage], 1e-9):>11.1f}   {unit}")
    total = sum(times.values())
    print(f"{'end to end':<28}{total:>9.2f}{frames / total:>11.2f}   video frame")
    print("\nanchors (published, other hardware):")
    for name, hw, fps in ANCHORS:
        print(f"  {name:<48} {fps:>6.1f} fps on {hw}   (ours / theirs: {frames / total / fps:.2f})")
    assert n == frames, f"overlay has {n} frames, the video {frames}"


if __name__ == "__main__":
    main()
