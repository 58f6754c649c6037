"""The torch Dataset over ``training_windows``: windowed decoding, the HMMR crop and augmentation, and a
DataLoader with real worker processes, on the real OpenPose output of a sample video imported into a
real lakehouse (tests/data/README.md).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hmmr.config import Settings
from pose_harvest.keypoints import HMMR25_FLIP
from pose_harvest.video import FrameStream
from warehouse import lake
from warehouse.catalog import ReadOnlyQueryError, read_only_query
from warehouse.crops import CROP_PX, Augment, Jitter, crop_images, crop_matrices, transform_keypoints
from warehouse.frame_window import VideoIndex, read_frames
from warehouse.importers.openpose import import_openpose
from warehouse.torch_dataset import WindowDataset, window_loader

FIXTURE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
VIDEO = SAMPLES / "pose2sim_single_cam01.mp4"


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    s = Settings(home=tmp_path_factory.mktemp("ds") / "home")
    import_openpose(FIXTURE, str(VIDEO), s)
    return s


def detection_rows(settings: Settings, track_id: int, start: int, T: int) -> list[dict]:
    sql = (f"SELECT d.* FROM detections d JOIN tracks t ON d.video_id = t.video_id AND d.raw_track_id = t.raw_track_id "
           f"WHERE t.track_id = {track_id} AND d.frame BETWEEN {start} AND {start + T - 1} ORDER BY d.frame")
    return read_only_query(settings, sql).to_pylist()


# -- decoding a window ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, starts", [("sports2d_demo.mp4", [0, 61, 210]), ("pose2sim_single_cam01.mp4", [37, 80])])
def test_windowed_decode_lands_on_the_right_frames(name, starts):
    """Bit-identical to the harvest's own whole-video decode, keyframe or not (sports2d: VP9, a keyframe
    every 60 frames; pose2sim: H.264 at 60 frames/s)."""
    index = VideoIndex.of(SAMPLES / name)
    full = np.stack([f.copy() for _, f in FrameStream(index.path, index.width, index.height)])
    assert len(index.times) == len(full)
    for start in starts:
        np.testing.assert_array_equal(read_frames(index, start, 20), full[start:start + 20], err_msg=f"{name} @ {start}")
    with pytest.raises(ValueError, match="has 5 of them"):
        read_frames(index, len(full) - 5, 20)


def test_windowed_decode_at_a_harvest_rate_other_than_the_videos():
    index = VideoIndex.of(VIDEO)
    full = np.stack([f.copy() for _, f in FrameStream(index.path, index.width, index.height, fps=15)])
    np.testing.assert_array_equal(read_frames(index, 10, 8, fps=15), full[10:18])


# -- crop geometry ----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0.1, 0.8])  # 0.1: the INTER_AREA pre-shrink path
@pytest.mark.parametrize("jitter", [Jitter(), Jitter(dx=-17, dy=9, scale=1.25, flip=True), Jitter(dx=5, dy=-20, scale=0.7)])
def test_image_and_keypoints_go_through_the_same_map(scale, jitter):
    """A bright square drawn at a keypoint's place in a frame lands where the keypoint lands."""
    h, w = 1920, 1080
    center = np.array([[540.0, 900.0]])
    m = crop_matrices(center, np.array([scale]), jitter)
    k = scale * jitter.scale * CROP_PX / 300  # video px -> crop px
    r = max(2, int(3 / k))  # a square about 6 crop pixels wide
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = center[0] + rng.uniform(-0.35, 0.35, 2) * min(300 / (scale * jitter.scale), 800)
        frame = np.zeros((1, h, w, 3), np.uint8)
        frame[0, int(p[1]) - r:int(p[1]) + r + 1, int(p[0]) - r:int(p[0]) + r + 1] = 255
        crop = crop_images(frame, m)[0, :, :, 0].astype(float)
        ys, xs = np.nonzero(crop > 20)
        found = np.array([np.average(xs, weights=crop[ys, xs]), np.average(ys, weights=crop[ys, xs])])
        kp = np.zeros((1, 25, 3))
        kp[0, 14] = [int(p[0]) + 0.0, int(p[1]) + 0.0, 1.0]  # the nose: the middle of the square
        out = transform_keypoints(kp, m, flip=jitter.flip, normalise=False)[0]
        slot = HMMR25_FLIP[14] if jitter.flip else 14
        np.testing.assert_allclose(out[slot, :2], found, atol=1.0)


def test_person_is_150_of_300_pixels_tall_in_the_crop(settings):
    """No augmentation: the keypoints' height is 150 / 300 of the crop, as the HMMR crop defines it."""
    ds = WindowDataset(settings, coords="crop")
    heights = []
    for i in range(0, len(ds), 10):
        kps = ds[i]["kps"].numpy()
        for k in kps:
            vis = k[:, 2] >= 0.1
            heights.append(k[vis, 1].max() - k[vis, 1].min())
    assert np.median(heights) == pytest.approx(2 * 150 / 300, rel=0.1)  # normalised: the crop is 2 tall


# -- items --------------------------------------------------------------------------------------------

def test_items_are_the_windows_rows(settings):
    ds = WindowDataset(settings, "SELECT * FROM training_windows ORDER BY track_id, start_frame")
    assert len(ds) == 125 and ds.snapshot == lake.current_snapshot(settings)
    for i in (0, 80, 81, 124):
        item = ds[i]
        assert item["kps"].shape == (20, 25, 3) and item["boxes"].shape == (20, 4) and item["affine"].shape == (20, 2, 3)
        assert item["kps"].dtype == torch.float32 and "images" not in item
        rows = detection_rows(settings, item["track_id"], item["start_frame"], 20)
        assert [r["frame"] for r in rows] == item["frames"].tolist() == list(range(item["start_frame"], item["start_frame"] + 20))
        np.testing.assert_array_equal(item["kps"][..., 0], [r["kp_x"] for r in rows])
        np.testing.assert_array_equal(item["kps"][..., 2], [r["kp_conf"] for r in rows])
        np.testing.assert_array_equal(item["boxes"], [[r["x0"], r["y0"], r["x1"], r["y1"]] for r in rows])
        assert item["has_detection"].all()
    assert (ds[80]["track_id"], ds[80]["start_frame"], ds[81]["track_id"], ds[81]["start_frame"]) == (1, 80, 2, 37)


def test_other_T_and_bad_queries(settings):
    ds = WindowDataset(settings, "SELECT * FROM training_windows WHERE track_id = 2", T=30)
    assert len(ds) == 63 - 30 + 1 and ds[0]["kps"].shape == (30, 25, 3)
    with pytest.raises(ValueError, match="not T = 30"):  # the catalog view itself is T = 20
        WindowDataset(settings, "SELECT * FROM lake.training_windows", T=30)
    with pytest.raises(ValueError, match="missing"):
        WindowDataset(settings, "SELECT video_id, track_id FROM training_windows")
    with pytest.raises(ReadOnlyQueryError):
        WindowDataset(settings, "SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(ValueError, match="coords='crop'"):
        WindowDataset(settings, augment=Augment())


def test_the_dataset_reads_the_snapshot_it_was_built_on(tmp_path):
    """A re-import that changes the tracks does not change a Dataset built before it."""
    s = Settings(home=tmp_path / "home")
    import_openpose(FIXTURE, str(VIDEO), s)
    before = WindowDataset(s, "SELECT * FROM training_windows WHERE track_id = 1 AND start_frame = 40")
    edited = shutil.copytree(FIXTURE, tmp_path / "json")
    for f in sorted(edited.glob("cam01.00[4-5]?.json")):  # the bystander (track 1) leaves for frames 40-59
        data = json.loads(f.read_text())
        data["people"] = [p for p in data["people"] if np.mean([x for x in p["pose_keypoints_2d"][0::3] if x > 0]) > 200]
        f.write_text(json.dumps(data))
    import_openpose(edited, str(VIDEO), s)
    assert lake.current_snapshot(s) > before.snapshot
    assert len(WindowDataset(s, "SELECT * FROM training_windows WHERE track_id = 1 AND start_frame = 40")) == 0
    item = before[0]
    assert item["has_detection"].all() and item["kps"][:, :, 2].sum() > 0


# -- augmentation -------------------------------------------------------------------------------------

def test_augmentation_is_seeded_and_in_the_papers_ranges(settings):
    a = WindowDataset(settings, coords="crop", augment=Augment(), seed=7)
    b = WindowDataset(settings, coords="crop", augment=Augment(), seed=7)
    assert a.jitter(3) == b.jitter(3) and a.jitter(3) != a.jitter(4)
    torch.testing.assert_close(a[3]["kps"], b[3]["kps"], rtol=0, atol=0)
    b.set_epoch(1)
    assert a.jitter(3) != b.jitter(3)
    draws = [a.jitter(i) for i in range(2000)]
    assert max(abs(j.dx) for j in draws) <= 20 and max(abs(j.dy) for j in draws) <= 20
    assert 0.7 <= min(j.scale for j in draws) < 0.72 and 1.28 < max(j.scale for j in draws) <= 1.3
    assert abs(np.mean([j.flip for j in draws]) - 0.5) < 0.05
    assert len({a.jitter(i) for i in range(10)}) == 10  # one draw per window ...
    m = a[5]["affine"].numpy()
    np.testing.assert_allclose(m[:, 0, 0] / m[0, 0, 0], m[:, 1, 1] / m[0, 1, 1], rtol=1e-5)  # ... shared by its frames


def test_flip_mirrors_the_crops_and_swaps_the_keypoints(settings):
    query = "SELECT * FROM training_windows WHERE track_id = 2 AND start_frame = 50"
    plain = WindowDataset(settings, query, frames=True, coords="crop")[0]
    flip = WindowDataset(settings, query, frames=True, coords="crop",
                         augment=Augment(max_translation_px=0, scale_range=0, flip_prob=1.0))[0]
    assert plain["images"].shape == (20, 3, CROP_PX, CROP_PX) and plain["images"].dtype == torch.float32
    assert 0 <= plain["images"].min() and plain["images"].max() <= 1 and plain["images"].std() > 0.1
    assert (flip["images"] - plain["images"].flip(-1)).abs().max() <= 1.5 / 255
    mirrored = plain["kps"][:, HMMR25_FLIP].clone()
    mirrored[..., 0] *= -1
    torch.testing.assert_close(flip["kps"], mirrored, atol=1e-5, rtol=0)
    vis = plain["kps"][..., 2] >= 0.1  # the subject's keypoints are on the brighter, textured person
    assert vis.float().mean() > 0.8 and plain["kps"][vis][:, :2].abs().max() < 1


# -- workers ------------------------------------------------------------------------------------------

def test_dataloader_with_two_worker_processes(settings):
    ds = WindowDataset(settings, coords="crop", augment=Augment(), seed=1)
    first = ds[0]  # the parent has a connection open now; workers get a pickled copy without it
    state = pickle.loads(pickle.dumps(ds))
    assert state._con is None and len(state) == len(ds)
    index = {ds.window(k): k for k in range(len(ds))}
    seen, batches = [], 0
    for batch in window_loader(ds, batch_size=8, num_workers=2, seed=0):
        assert batch["kps"].shape[1:] == (20, 25, 3) and batch["boxes"].shape[1:] == (20, 4)
        for j, (v, t, s) in enumerate(zip(batch["video_id"], batch["track_id"].tolist(), batch["start_frame"].tolist())):
            i = index[(v, t, s)]
            seen.append(i)
            if i == 0:
                torch.testing.assert_close(batch["kps"][j], first["kps"], rtol=0, atol=0)
        batches += 1
    assert sorted(seen) == list(range(len(ds))) and batches == 16 and seen != sorted(seen)  # shuffled, each once
    order = [b["start_frame"].tolist() for b in window_loader(ds, batch_size=8, num_workers=0, seed=0)]
    assert order == [b["start_frame"].tolist() for b in window_loader(ds, batch_size=8, num_workers=0, seed=0)]


def test_a_forked_copy_opens_its_own_connection(settings):
    """A DataLoader started with fork copies an open connection; the Dataset notices the new process."""
    query = "SELECT * FROM training_windows WHERE track_id IN (1, 2) ORDER BY track_id DESC, start_frame"
    ds = WindowDataset(settings, query)
    ds[0]
    con = ds._con
    assert ds._connection() is con
    ds._pid = -1  # as in a forked child: the connection belongs to another process
    last = ds[len(ds) - 1]  # track 1: not cached yet, read through a new connection
    assert ds._con is not con
    torch.testing.assert_close(last["kps"], WindowDataset(settings, query)[len(ds) - 1]["kps"], rtol=0, atol=0)
