"""hmmr predict on real inputs: a small checkpoint trained here on the harvested sample
pose2sim_single_cam01 (100 frames of 1080 x 1920, a subject and a bystander), predicted whole; a real
frame of sports2d_demo as a single image; and every input that cannot be predicted.

The checkpoint is tiny (the train flow tests' network width, 20 steps on both people), so the poses are
rough; what is checked is what must hold for any checkpoint: shapes and units of the files, the cameras
against the warehouse's own crop boxes, the overlay's frames, and meshes landing on the people.
"""

from __future__ import annotations

import colorsys
import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from .test_body_model import body_home  # noqa: F401  (the session's built open body model)
from .test_train_flow import SMALL, harvested_home  # noqa: F401  (the harvested sample)

SAMPLE = "pose2sim_single_cam01.mp4"
STEPS = 20
BOTH_PEOPLE = "SELECT * FROM training_windows WHERE start_frame % 10 = 0"  # 9 windows of each of the 2 tracks


@pytest.fixture(scope="module")
def checkpoint(harvested_home, prefect_harness) -> Path:  # noqa: F811
    from flows.train import train

    run = harvested_home / "runs" / "predict"
    train(query=BOTH_PEOPLE, home=str(harvested_home), run_dir=str(run), steps=STEPS, checkpoint_every=STEPS, augment=False,
          config=SMALL, progress=False)
    return run / "last.pt"


@pytest.fixture(scope="module")
def predicted(checkpoint, harvested_home, samples, prefect_harness) -> dict:  # noqa: F811
    from flows.predict import predict

    return predict(source=str(samples / SAMPLE), checkpoint=str(checkpoint), home=str(harvested_home), progress=False)


def _lake(home: Path, sql: str) -> list[dict]:
    from hmmr.config import Settings
    from warehouse.catalog import read_only_query

    return read_only_query(Settings(home=home), sql).to_pylist()


def _boxes(home: Path, video_id: str, track_id: int) -> dict[int, np.ndarray]:
    """frame -> the detection box x0, y0, x1, y1 (pixels) of one track."""
    rows = _lake(home, f"SELECT frame, x0, y0, x1, y1 FROM detections WHERE video_id = '{video_id}' AND track_id = {track_id}")
    return {r["frame"]: np.array([r["x0"], r["y0"], r["x1"], r["y1"]]) for r in rows}


def _grow(box: np.ndarray, by: float) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    return box + np.array([-by * w, -by * h, by * w, by * h])


def test_parquet_and_npz_hold_every_kept_frame(predicted, harvested_home):  # noqa: F811
    from model.prediction_files import read_predictions

    vid = predicted["video_id"]
    kept = {r["track_id"]: r for r in _lake(harvested_home, f"SELECT track_id, start_frame, end_frame, n_frames FROM tracks "
                                                            f"WHERE video_id = '{vid}' AND kept")}
    assert predicted["tracks"] == sorted(kept) and len(kept) == 2  # subject and bystander
    table = pq.read_table(predicted["files"]["parquet"])
    assert table.column_names == ["video_id", "track_id", "frame", "time_s", "has_detection", "pose", "shape", "cam_crop",
                                  "cam_image", "transl", "joints3d", "kps3d", "kps2d_image"]
    assert table.num_rows == sum(t["n_frames"] for t in kept.values()) == predicted["frames"]
    meta = json.loads(table.schema.metadata[b"hmmr"])
    assert (meta["width"], meta["height"], meta["fps"], meta["body_model"]) == (1080, 1920, 60.0, "open")
    rows = table.to_pydict()
    first = {k: np.asarray(v[0]) for k, v in rows.items() if k not in ("video_id",)}
    assert {k: first[k].shape for k in ("pose", "shape", "cam_crop", "cam_image", "joints3d", "kps3d", "kps2d_image")} == {
        "pose": (72,), "shape": (10,), "cam_crop": (3,), "cam_image": (3,), "joints3d": (24, 3), "kps3d": (25, 3), "kps2d_image": (25, 2)}

    pred = read_predictions(Path(predicted["out"]))
    assert pred.faces.shape[1] == 3 and pred.faces.max() < meta["n_vertices"] == 13718
    for tid, motion in pred.tracks.items():
        n = kept[tid]["n_frames"]
        assert motion.frames.tolist() == list(range(kept[tid]["start_frame"], kept[tid]["end_frame"] + 1))
        assert motion.pose.shape == (n, 72) and motion.vertices.shape == (n, 13718, 3) and motion.joints3d.shape == (n, 24, 3)
        assert all(np.isfinite(getattr(motion, k)).all() for k in ("pose", "shape", "cam_image", "vertices", "transl"))
        sel = np.asarray(rows["track_id"]) == tid
        assert np.array_equal(np.asarray(rows["pose"])[sel], motion.pose)
        # kps2d_image is kps3d through cam_image: u = s_px X + tx_px
        s, t = motion.cam_image[:, None, :1], motion.cam_image[:, None, 1:]
        assert np.allclose(motion.kps2d_image, s * motion.kps3d[..., :2] + t, atol=1e-3)
        # ... and the crop camera taken to the video through the track's own crop box (track_frames):
        # 224 crop pixel c = (x_n + 1) 112 - 0.5, video pixel = (c - 111.5) / k + centre, k = scale 224 / 300
        tf = _lake(harvested_home, f"SELECT center_x, center_y, scale FROM track_frames WHERE video_id = '{vid}' "
                                   f"AND track_id = {tid} ORDER BY frame")
        centre = np.array([[r["center_x"], r["center_y"]] for r in tf])[:, None]
        k = np.array([r["scale"] for r in tf])[:, None, None] * 224 / 300
        x_n = motion.cam_crop[:, None, :1] * (motion.kps3d[..., :2] + motion.cam_crop[:, None, 1:])
        assert np.allclose(((x_n + 1) * 112 - 0.5 - 111.5) / k + centre, motion.kps2d_image, atol=0.05)
        # the pinhole translation sees the body where cam_image does
        assert np.allclose(meta["focal_px"] / motion.transl[:, 2], motion.cam_image[:, 0], rtol=1e-4)


def test_projected_vertices_fall_inside_the_person(predicted, harvested_home):  # noqa: F811
    from model.prediction_files import read_predictions

    pred = read_predictions(Path(predicted["out"]))
    for tid, motion in pred.tracks.items():
        boxes = _boxes(harvested_home, predicted["video_id"], tid)
        inside = []
        for i, frame in enumerate(motion.frames.tolist()):
            if frame in boxes:
                x0, y0, x1, y1 = _grow(boxes[frame], 0.15)
                v = motion.vertices_image(i)
                inside.append(np.mean((v[:, 0] >= x0) & (v[:, 0] <= x1) & (v[:, 1] >= y0) & (v[:, 1] <= y1)))
        inside = np.array(inside)
        assert len(inside) > 50 and np.mean(inside >= 0.9) >= 0.8, f"track {tid}: {np.round(np.percentile(inside, [10, 50, 90]), 3)}"


def test_overlay_has_the_frames_and_rate_of_the_video_and_draws_on_the_people(predicted, harvested_home, samples):  # noqa: F811
    from pose_harvest.video import FrameStream

    overlay = Path(predicted["files"]["overlay"])

    def probe(path: Path) -> list[str]:
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                              "stream=nb_read_frames,r_frame_rate,width,height", "-of", "csv=p=0", str(path)],
                             capture_output=True, text=True, check=True).stdout
        return out.strip().split(",")

    assert probe(overlay) == probe(samples / SAMPLE) == ["1080", "1920", "60/1", "100"]
    boxes = {tid: _boxes(harvested_home, predicted["video_id"], tid) for tid in predicted["tracks"]}
    inside, outside = [], []
    original = iter(FrameStream(samples / SAMPLE, 1080, 1920))
    for (i, drawn), (_, frame) in zip(FrameStream(overlay, 1080, 1920), original):
        if i % 5:
            continue
        diff = np.abs(drawn.astype(np.int16) - frame.astype(np.int16)).mean(-1)
        away = np.ones(diff.shape, bool)
        for per_frame in boxes.values():
            if i in per_frame:
                x0, y0, x1, y1 = per_frame[i].astype(int)
                inside.append(diff[max(y0, 0):y1, max(x0, 0):x1].mean())
                gx0, gy0, gx1, gy1 = _grow(per_frame[i], 0.5).astype(int)
                away[max(gy0, 0):gy1, max(gx0, 0):gx1] = False
        outside.append(diff[away].mean())
    assert len(inside) >= 30
    assert np.median(inside) > 25, f"the meshes barely change the people's boxes: {np.median(inside):.1f} grey levels"
    assert np.median(outside) < 4, f"the overlay changes the image away from the people: {np.median(outside):.1f} grey levels"


def test_meshes_are_shaded_and_the_first_is_in_front(predicted):
    from model.mesh_render import MeshRenderer
    from model.prediction_files import read_predictions

    pred = read_predictions(Path(predicted["out"]))
    front = pred.tracks[0].vertices_image(50)
    behind = front + np.array([40.0, 0.0, 0.0], np.float32)  # the same body 40 px to the right
    black = np.zeros((1920, 1080, 3), np.uint8)
    red, blue = (255, 0, 0), (0, 0, 255)
    with MeshRenderer(pred.faces, 1080, 1920) as renderer:
        alone = renderer.overlay(black, [front], [red]).any(-1)
        both = renderer.overlay(black, [front, behind], [red, blue])
    assert alone.sum() > 10_000
    reds = both[alone]
    assert (reds[:, 0] > reds[:, 2]).all(), "the second mesh shows through the first"
    assert ((both[..., 2] > both[..., 0]) & ~alone).sum() > 1_000  # the one behind shows beside it
    assert np.ptp(reds[:, 0]) > 80, "one flat colour: no shading"


def _hue(rgb) -> float:
    return colorsys.rgb_to_hsv(*(np.asarray(rgb) / 255))[0]


def test_single_image_gives_past_present_and_future_panels(checkpoint, harvested_home, samples, tmp_path, prefect_harness):  # noqa: F811
    import cv2

    from flows.predict import predict
    from pose_harvest.render import track_colour

    image = tmp_path / "two_people.jpg"  # sports2d_demo at 3 s: the walker and the person in front
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "3", "-i", str(samples / "sports2d_demo.mp4"), "-frames:v", "1", str(image)],
                   check=True)
    result = predict(source=str(image), checkpoint=str(checkpoint), home=str(harvested_home), out=str(tmp_path / "out"))
    assert result["kind"] == "image" and result["people"] == 2
    png = cv2.cvtColor(cv2.imread(result["files"]["png"]), cv2.COLOR_BGR2RGB)
    side = png.shape[1] // 3
    assert png.shape == (2 * side, 3 * side, 3)
    with np.load(result["files"]["npz"]) as npz:
        assert npz["times"].tolist() == [-5, 0, 5] and npz["pose"].shape == (3, 2, 72) and npz["vertices"].shape[:2] == (3, 2)
        assert not np.allclose(npz["pose"][0], npz["pose"][1]) and not np.allclose(npz["pose"][2], npz["pose"][1])
    hsv = cv2.cvtColor(png, cv2.COLOR_RGB2HSV_FULL).astype(float)
    for person in range(2):
        hue = _hue(track_colour(person)) * 255
        for k in range(3):
            panel = hsv[person * side:(person + 1) * side, k * side:(k + 1) * side]
            d = np.abs(panel[..., 0] - hue)
            mesh = (np.minimum(d, 255 - d) < 8) & (panel[..., 1] > 80)
            assert mesh.mean() > 0.02, f"person {person}, panel {k}: no mesh in its colour ({mesh.mean():.4f})"


@pytest.fixture(scope="module")
def odd_checkpoints(checkpoint, tmp_path_factory) -> dict[str, Path]:
    """The trained checkpoint changed the ways a checkpoint from elsewhere differs."""
    folder = tmp_path_factory.mktemp("checkpoints")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    smpl = folder / "smpl_body.pt"
    torch.save(state | {"extra": state["extra"] | {"body": "smpl"}}, smpl)
    newer = folder / "newer_settings.pt"
    torch.save(state | {"config": state["config"] | {"attention_heads": 8}}, newer)
    wider = folder / "other_width.pt"
    torch.save(state | {"config": state["config"] | {"feature_dim": 512}}, wider)
    text = folder / "notes.pt"
    text.write_text("not a checkpoint\n")
    return {"smpl": smpl, "newer": newer, "wider": wider, "text": text, "good": checkpoint}


CASES = {  # source, checkpoint, what the message says
    "not a checkpoint": ("sample", "text", "is not a readable checkpoint"),
    "trained with SMPL": ("sample", "smpl", "trained with the smpl body model, not the open one: pass --smpl"),
    "settings of another version": ("sample", "newer", "model settings this hmmr does not know \\(attention_heads\\)"),
    "weights of another configuration": ("sample", "wider", "does not fit its own model settings"),
    "a video with nobody in it": ("nobody_short.mp4", "good", "no person found in .*nobody_short.mp4 \\(15 frames\\): nothing predicted"),
    "a text file posing as a video": ("notes.mp4", "good", "not a readable video"),
    "a dead link": ("http:missing.mp4", "good", "cannot open http://.*missing.mp4: .*404"),
    "no such file": ("missing.mp4", "good", "not a URL and not an existing file"),
    "an image with nobody in it": ("nobody.png", "good", "no person found in .*nobody.png"),
    "a text file posing as an image": ("notes.jpg", "good", "is not a readable image"),
}


@pytest.mark.parametrize("case", CASES)
def test_what_cannot_be_predicted_says_why_and_writes_nothing(case, odd_checkpoints, served, http_base, samples,
                                                               harvested_home, tmp_path, prefect_harness):  # noqa: F811
    from flows.predict import PredictError, predict
    from model.train import CheckpointMismatch

    name, ckpt, message = CASES[case]
    if name == "sample":
        source = str(samples / SAMPLE)
    elif name.startswith("http:"):
        source = f"{http_base}/{name[5:]}"
    elif name == "nobody.png":
        source = str(tmp_path / name)
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(served / "nobody.mp4"), "-frames:v", "1", source], check=True)
    elif name == "nobody_short.mp4":  # half a second of a moving test pattern (the harvest of it is the slow part)
        source = str(tmp_path / name)
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=0.5",
                        "-pix_fmt", "yuv420p", "-c:v", "libx264", source], check=True)
    elif name == "notes.jpg":
        source = str(tmp_path / name)
        Path(source).write_text("a text file\n")
    else:
        source = str(served / name) if (served / name).exists() else str(tmp_path / name)
    out = tmp_path / "out"
    with pytest.raises((PredictError, CheckpointMismatch), match=message) as err:
        predict(source=source, checkpoint=str(odd_checkpoints[ckpt]), home=str(harvested_home), out=str(out), progress=False)
    assert "\n" not in str(err.value) and not out.exists()


def test_cli_error_is_one_line_and_exits_non_zero(odd_checkpoints, harvested_home, samples, prefect_harness):  # noqa: F811
    from typer.testing import CliRunner

    from hmmr.cli import app

    result = CliRunner().invoke(app, ["predict", str(samples / SAMPLE), "--checkpoint", str(odd_checkpoints["smpl"]),
                                      "--home", str(harvested_home)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {odd_checkpoints['smpl']} was trained with the smpl body model, not the open one: pass --smpl PATH "
        "(or set HMMR_SMPL_PATH) to the SMPL file it was trained with"]
