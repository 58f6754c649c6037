"""Plots and exports of real harvested data and real predictions, and the artifacts that show the plots.

One module fixture runs the real pipeline on the sample pose2sim_single_cam01 (tagged): the harvest
flow (its report artifact embeds the dataset plots), two training steps of a small HMMR (an
undertrained but real checkpoint), the evaluate flow (its acceleration artifact) and the predict flow
(``predictions.npz``/``.parquet``, no overlay video). Each plot is checked through its matplotlib
objects (bars, lines, image data) against numbers computed here from the warehouse or the metrics,
and as a PNG file of the figure's pixel size.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from hmmr.config import Settings
from hmmr.figures import DPI, save_png
from model import metrics
from model.body import SMPL_JOINTS
from model.export import CAMERA_TO_Y_UP
from pose_harvest.keypoints import HMMR25
from warehouse import plots
from warehouse.catalog import read_only_query
from warehouse.importers.bvh import read_bvh

from .test_body_model import body_home  # noqa: F401  (the session's built open body model)
from .test_train_flow import SMALL

TAGS = "#lab #balance rig=cam01"
LABELS = {"#lab", "#balance", "rig=cam01"}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, body_home, samples, prefect_harness):  # noqa: F811
    """The sample harvested (tagged), a 2-step checkpoint, its evaluation and its predictions."""
    from flows.evaluate import evaluate
    from flows.harvest import harvest
    from flows.predict import predict
    from flows.train import train

    home = tmp_path_factory.mktemp("plots-home")
    (home / "body").symlink_to(body_home / "body", target_is_directory=True)
    video = samples / "pose2sim_single_cam01.mp4"
    (home / "sources.txt").write_text(f"{video} {TAGS}\n")
    harvested = harvest(sources=str(home / "sources.txt"), home=str(home), progress=False)
    run = home / "runs" / "tiny"
    train(query="SELECT * FROM training_windows ORDER BY video_id, track_id, start_frame LIMIT 8", home=str(home),
          run_dir=str(run), steps=2, checkpoint_every=2, augment=False, config=SMALL, progress=False)
    evaluated = evaluate(checkpoint=str(run / "last.pt"), home=str(home))
    predicted = predict(source=str(video), checkpoint=str(run / "last.pt"), home=str(home), render=False, progress=False)
    return {"home": home, "settings": Settings(home=home), "harvest": harvested, "evaluate": evaluated,
            "predict": predicted, "checkpoint": run / "last.pt"}


def q(settings: Settings, sql: str) -> list[dict]:
    return read_only_query(settings, sql).to_pylist()


def _png_shape(fig, path: Path) -> tuple[int, int]:
    save_png(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path).shape[:2]


def test_dataset_plots(pipeline, tmp_path):
    s = pipeline["settings"]
    figs = plots.dataset_figures(s)
    kept = q(s, "SELECT count(*) AS n FROM curated_tracks")[0]["n"]
    lengths = q(s, "SELECT n_frames, kept FROM tracks")
    assert kept >= 1

    ax = figs["tracks_per_tag"].axes[0]
    assert {t.get_text() for t in ax.get_yticklabels()} == LABELS  # a bar per tag of the video
    assert [round(b.get_width()) for b in ax.patches] == [kept] * 3  # every kept track counts under each tag
    capped = plots.tracks_per_tag_figure(plots.tracks_per_tag_data(s), most=2).axes[0]  # past `most` tags: one bar for the rest
    assert [t.get_text() for t in capped.get_yticklabels()][0] == "(2 other tags)"
    assert [round(b.get_width()) for b in capped.patches] == [2 * kept, kept]

    ax = figs["track_lengths"].axes[0]
    heights = np.array([b.get_height() for b in ax.patches]).reshape(2, 20)  # 20 bins, kept then dropped stacked
    assert heights[0].sum() == kept and heights[1].sum() == sum(not r["kept"] for r in lengths)
    longest = max(r["n_frames"] for r in lengths)
    assert ax.patches[-1].get_x() + ax.patches[-1].get_width() == pytest.approx(longest)

    ax = figs["keypoint_visibility"].axes[0]
    rows = q(s, "SELECT d.kp_conf FROM detections d JOIN curated_tracks USING (video_id, track_id)")
    conf = np.array([r["kp_conf"] for r in rows])
    assert [t.get_text() for t in ax.get_xticklabels()] == list(HMMR25.joints)
    np.testing.assert_allclose([b.get_height() for b in ax.patches], (conf >= 0.1).mean(0), atol=1e-9)
    assert f"{len(rows):,} detections" in ax.get_title()

    for name, fig in figs.items():
        w, h = fig.get_size_inches() * DPI
        assert _png_shape(fig, tmp_path / f"{name}.png") == (round(h), round(w))


def test_track_confidence_plot(pipeline, tmp_path):
    s = pipeline["settings"]
    t = q(s, "SELECT video_id, track_id, start_frame, n_frames FROM curated_tracks ORDER BY n_frames DESC LIMIT 1")[0]
    frames, conf = plots.track_confidence_data(s, t["video_id"], t["track_id"])
    fig = plots.track_confidence_figure(frames, conf, "track")
    image = fig.axes[0].get_images()[0].get_array()
    assert image.shape == (25, t["n_frames"])
    interpolated = q(s, f"SELECT count(*) AS n FROM track_frames WHERE video_id = '{t['video_id']}' "
                        f"AND track_id = {t['track_id']} AND interpolated")[0]["n"]
    assert np.isnan(image.filled(np.nan)).all(0).sum() == interpolated  # blank columns: frames without a detection
    det = q(s, f"SELECT frame, kp_conf FROM detections WHERE video_id = '{t['video_id']}' AND track_id = {t['track_id']} ORDER BY frame")
    np.testing.assert_allclose(image[:, det[0]["frame"] - t["start_frame"]], det[0]["kp_conf"], rtol=1e-6)
    assert _png_shape(fig, tmp_path / "track.png") == (500, 900)
    with pytest.raises(LookupError, match="no track 999"):
        plots.track_confidence_data(s, t["video_id"], 999)


def test_acceleration_plot_against_ground_truth(body_home, tmp_path):  # noqa: F811
    """Prediction: the open body model's LSP joints posed with the CMU walk's rotations; ground truth:
    the CMU skeleton's own joints of the same walk. Three lines: the two accelerations and the error."""
    from model.body import load_body_model
    from model.plots import acceleration_curves, acceleration_figure

    from .test_export import CMU_FOR_SMPL, FPS, cmu_walk

    w = cmu_walk()
    body = load_body_model(Settings(home=body_home))
    with torch.no_grad():
        pred = body(torch.as_tensor(w["pose"], dtype=torch.float32), torch.zeros(len(w["pose"]), 10),
                    torch.as_tensor(w["trans"], dtype=torch.float32)).lsp_joints.double().numpy() @ CAMERA_TO_Y_UP.T
    from warehouse.mocap.motion import resample

    cmu = resample(read_bvh(Path(__file__).parent / "data" / "cmu_bvh" / "02_01.bvh"), FPS)
    lsp_from_smpl = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
                     "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head"]
    gt = cmu.positions()[:, [cmu.names.index(CMU_FOR_SMPL[j]) for j in lsp_from_smpl]]
    curves = acceleration_curves(pred, gt)
    fig = acceleration_figure(curves, "walk", start_frame=10)
    lines = fig.axes[0].get_lines()
    assert [line.get_label().split(" (")[0] for line in lines] == ["predicted", "ground truth", "error"]
    np.testing.assert_allclose(lines[0].get_ydata(), metrics.acceleration(pred))
    np.testing.assert_allclose(lines[2].get_ydata(), metrics.acceleration_error(pred, gt))
    assert list(lines[0].get_xdata()) == list(range(11, 11 + len(pred) - 2))
    assert lines[1].get_ydata().mean() > 1  # a walk accelerates: mm/frame^2 at 30 fps
    only = acceleration_figure(acceleration_curves(pred), "walk")
    assert len(only.axes[0].get_lines()) == 1 and only.axes[0].get_xlabel() == "frame of the track"
    assert _png_shape(fig, tmp_path / "accel.png") == (350, 700)


def _artifacts(key: str) -> list:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [a for a in client.read_artifacts() if a.key == key]


def _embedded_pngs(markdown: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)]


def test_harvest_report_artifact_embeds_the_dataset_plots(pipeline):
    run_id = pipeline["harvest"]["run_id"]
    (art,) = [a for a in _artifacts("harvest-summary") if f"# Harvest {run_id}" in a.data]
    assert art.flow_run_id is not None  # attached to the harvest flow run
    pngs = _embedded_pngs(art.data)
    folder = pipeline["home"] / "plots" / f"harvest-{run_id}"
    files = sorted(folder.glob("*.png"))
    assert [p.name for p in files] == ["keypoint_visibility.png", "track_lengths.png", "tracks_per_tag.png"]
    assert sorted(pngs) == sorted(p.read_bytes() for p in files)  # the files themselves, inline
    assert all(f"(file://{p})" in art.data for p in files)


def test_evaluate_artifact_embeds_acceleration_plots(pipeline):
    s = pipeline["settings"]
    folder = Path(pipeline["evaluate"]["written_to"]).with_suffix("")
    (art,) = [a for a in _artifacts("evaluation-acceleration") if str(folder) in a.data]
    assert art.flow_run_id is not None
    tracks = q(s, "SELECT video_id, track_id FROM curated_tracks WHERE n_frames >= 20")
    files = sorted(folder.glob("accel_*.png"))
    assert len(files) == min(3, len(tracks)) >= 1 and len(_embedded_pngs(art.data)) == len(files)


def test_plot_cli(pipeline, tmp_path):
    from hmmr.cli import app

    home = str(pipeline["home"])
    res = CliRunner().invoke(app, ["plot", "dataset", "-o", str(tmp_path / "ds"), "--home", home])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["keypoint_visibility.png", "track_lengths.png", "tracks_per_tag.png"]
    video_id, track = pipeline["predict"]["video_id"], pipeline["predict"]["tracks"][0]
    res = CliRunner().invoke(app, ["plot", "track", video_id, str(track), "-o", str(tmp_path / "t.png"), "--home", home])
    assert res.exit_code == 0, res.output
    assert "with its predicted motion from" in res.output  # found in HOME/predictions/<video>/
    assert imread(tmp_path / "t.png").shape[:2] == (800, 900)  # two panels: confidence, acceleration
    res = CliRunner().invoke(app, ["plot", "track", video_id, "999", "--home", home])
    assert res.exit_code == 1 and "no track 999" in res.output


@pytest.mark.parametrize("fmt, source", [("bvh", "folder"), ("gltf", "parquet")])
def test_export_cli_on_real_predictions(pipeline, tmp_path, fmt, source):
    """``hmmr export`` of a predicted track: the BVH's forward kinematics is the predictions' own SMPL
    joints (``joints3d`` + ``transl``, turned Y-up) up to the mean shape's change of the skeleton."""
    import pygltflib

    from hmmr.cli import app
    from model.prediction_files import PARQUET, read_predictions

    folder = Path(pipeline["predict"]["out"])
    track = pipeline["predict"]["tracks"][0]
    motion = read_predictions(folder).tracks[track]
    out = tmp_path / f"t.{'bvh' if fmt == 'bvh' else 'glb'}"
    where = folder if source == "folder" else folder / PARQUET
    res = CliRunner().invoke(app, ["export", str(track), "--predictions", str(where), "-o", str(out), "--home", str(pipeline["home"])])
    assert res.exit_code == 0, res.output
    n = len(motion.frames)
    if fmt == "bvh":
        m = read_bvh(out)
        assert m.n_frames == n and m.fps == 60.0 and sorted(m.names) == sorted(SMPL_JOINTS)
        fk = m.positions()[:, [m.names.index(j) for j in SMPL_JOINTS]]
        truth = (motion.joints3d + motion.transl[:, None]).astype(np.float64) @ CAMERA_TO_Y_UP.T
        spread = 1000 * np.abs(motion.shape - motion.shape.mean(0)).max()
        err_mm = 1000 * np.linalg.norm(fk - truth, axis=-1)
        assert err_mm.max() < 10, f"BVH joints {err_mm.max():.2f} mm from the predictions' (shape spread {spread:.1f})"
    else:
        doc = pygltflib.GLTF2().load_binary(str(out))
        assert doc.accessors[doc.animations[0].samplers[0].input].count == n and len(doc.skins[0].joints) == 24
    res = CliRunner().invoke(app, ["export", "999", "--predictions", str(folder), "--home", str(pipeline["home"])])
    assert res.exit_code == 1 and "no track 999" in res.output
