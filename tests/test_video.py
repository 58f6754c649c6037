"""ffprobe validation, one-pass decoding, shot cuts: on the real sample clips and broken files."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from pose_harvest.video import FrameStream, InvalidVideo, probe, shots_from_cuts


@pytest.mark.parametrize(
    "name, w, h, fps, n",
    [("sports2d_demo", 1768, 994, 30.0, 230), ("pose2sim_single_cam01", 1080, 1920, 60.0, 100),
     ("pose2sim_multi_cam01", 1088, 1920, 60.0, 100), ("pose2sim_multi_cam03", 1088, 1920, 60.0, 100)],
)
def test_probe_sample_clips(samples, name, w, h, fps, n):
    info = probe(samples / f"{name}.mp4")
    assert (info.width, info.height, info.fps, info.n_frames) == (w, h, fps, n)
    assert info.duration_s == pytest.approx(n / fps, abs=0.05)


@pytest.mark.parametrize(
    "name, message",
    [("truncated.mp4", "truncated file: 1 of 230"), ("notes.mp4", "not a readable video"),
     ("empty.mp4", "empty file"), ("page.html", "not a readable video"), ("audio_only.m4a", "no video stream")],
)
def test_probe_rejects_bad_files(served, name, message):
    with pytest.raises(InvalidVideo, match=message):
        probe(served / name)


def test_decode_frames_and_resample(samples):
    path = samples / "pose2sim_single_cam01.mp4"
    info = probe(path)
    stream = FrameStream(path, info.width, info.height)
    frames = list(stream)
    assert len(frames) == 100 and stream.n_frames == 100 and stream.cuts == [] and stream.error is None
    idx, rgb = frames[50]
    assert idx == 50 and rgb.shape == (1920, 1080, 3) and rgb.dtype == np.uint8 and rgb.std() > 10
    half = FrameStream(path, info.width, info.height, fps=30)
    assert sum(1 for _ in half) == 50


def test_shot_cut_is_found_in_the_same_pass(samples, tmp_path):
    """Two real clips joined back to back: one cut at the join, frame 100."""
    out = tmp_path / "cut.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(samples / "pose2sim_single_cam01.mp4"), "-i",
         str(samples / "sports2d_demo.mp4"), "-filter_complex",
         "[0:v]scale=540:960,setsar=1,fps=30[a];[1:v]scale=540:960,setsar=1,fps=30,trim=end_frame=60[b];[a][b]concat=n=2:v=1[v]",
         "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", str(out)],
        check=True,
    )
    info = probe(out)
    stream = FrameStream(out, info.width, info.height)
    n = sum(1 for _ in stream)
    assert n == info.n_frames == 110
    assert stream.cuts == [50]
    assert shots_from_cuts(stream.cuts, n) == [(0, 50), (50, 110)]
