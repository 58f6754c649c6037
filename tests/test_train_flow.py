"""The train and evaluate flows on a real harvested track, with the open body model.

The network is the paper's architecture at a smaller width (256 instead of 2048 features), so that a
few hundred steps run on two CPU cores in a test; the full-size modules are checked in
tests/test_model_networks.py and timed in benchmarks/train.py.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import REPO, hmmr_env
from .test_body_model import body_home  # noqa: F401  (the session's built open body model)

SMALL = {"feature_dim": 256, "keypoint_hidden": 256, "ief_hidden": 256, "disc_hidden": 128, "lr_encoder": 1e-3}
LONGEST = "(SELECT track_id FROM curated_tracks ORDER BY n_frames DESC, track_id LIMIT 1)"
SUBJECT = f"SELECT * FROM training_windows WHERE track_id = {LONGEST} ORDER BY start_frame LIMIT 8"  # one batch


def _metrics(run_dir: Path) -> list[dict]:
    """metrics.csv rows without their wall-clock column."""
    with (run_dir / "metrics.csv").open() as fh:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def harvested_home(tmp_path_factory, body_home, samples, prefect_harness):  # noqa: F811
    """A lakehouse with the real sample pose2sim_single_cam01 harvested by the embedded detector, and
    the built open body model in its body/ folder."""
    from flows.harvest import harvest

    home = tmp_path_factory.mktemp("train-home")
    (home / "body").symlink_to(body_home / "body", target_is_directory=True)
    sources = home / "sources.txt"
    sources.write_text(f"{samples / 'pose2sim_single_cam01.mp4'}\n")
    harvest(sources=str(sources), home=str(home), progress=False)
    return home


@pytest.fixture(scope="module")
def trained(harvested_home, prefect_harness):
    from flows.train import train

    run = harvested_home / "runs" / "overfit"
    result = train(query=SUBJECT, home=str(harvested_home), run_dir=str(run), steps=200, checkpoint_every=100,
                   augment=False, config=SMALL, progress=False)
    return run, result


def test_training_overfits_a_real_track(trained):
    """200 steps on 8 windows of the subject's track: the 2D keypoint loss falls by 10x."""
    run, result = trained
    rows = _metrics(run)
    first, last = float(rows[0]["kp"]), float(rows[-1]["kp"])
    assert result["step"] == 200 and [int(r["step"]) for r in rows] == list(range(1, 201)) and result["windows"] == 8
    assert last < first / 10, f"2D keypoint loss {first:.3f} -> {last:.3f}"
    assert {"kp_dt-5", "kp_dt+5", "hal_kp", "hallucinate", "const_shape", "shape_prior", "total"} <= set(rows[0])
    assert (run / "last.pt").is_file() and any((run / "tb").iterdir())


def test_train_artifacts_and_snapshot(trained, prefect_harness):
    from prefect.client.orchestration import get_client

    run, result = trained
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"train-loss-curves", "train-summary", "train-progress"} <= keys
    from model.train import read_checkpoint

    extra = read_checkpoint(run / "last.pt")["extra"]
    assert extra["snapshot"] == result["snapshot"] and extra["body"] == "open" and extra["query"] == SUBJECT
    assert read_checkpoint(run / "last.pt", mmap=True)["extra"] == extra
    # the growth trigger counts kept tracks since this model's snapshot: none are new
    from flows.triggers import kept_tracks, new_tracks_since_last_model
    from hmmr.config import Settings

    settings = Settings(home=run.parents[1])
    assert kept_tracks(settings) > 0 and new_tracks_since_last_model(settings) == (0, run / "last.pt")


def test_evaluate_scores_every_head(trained, harvested_home, prefect_harness):
    from flows.evaluate import evaluate

    run, _ = trained
    result = evaluate(checkpoint=str(run / "last.pt"), home=str(harvested_home))
    m = result["metrics"]
    assert result["tracks"] == 2 and result["model"] == "temporal"
    for key in ("pck", "accel", "pck_dt-5", "pck_dt+5", "pck_const-5", "pck_const+5"):
        assert key in m and m[key] == m[key], key  # present and not NaN
    assert 0.0 <= m["pck"] <= 1.0 and m["accel"] > 0
    assert Path(result["written_to"]).is_file()
    # the same numbers in the warehouse table, one row per metric; evaluating again replaces them
    from hmmr.config import Settings
    from warehouse.catalog import read_only_query

    def stored():
        return read_only_query(Settings(home=harvested_home), "SELECT evaluation_id, metric, value, unit, data_snapshot, n_tracks "
                               "FROM evaluations ORDER BY metric").to_pylist()

    rows = stored()
    assert {r["metric"]: r["value"] for r in rows} == pytest.approx(m)
    assert {r["evaluation_id"] for r in rows} == {result["evaluation_id"]} and rows[0]["n_tracks"] == 2
    assert {r["unit"] for r in rows if r["metric"].startswith("pck")} == {"0-1"}
    assert {r["unit"] for r in rows if r["metric"].startswith("accel")} == {"mm/frame^2"}
    assert rows[0]["data_snapshot"] == result["data_snapshot"]
    # storing it again (a retried task) leaves one copy
    from flows.evaluate import store_evaluation

    sha = rows[0]["evaluation_id"].split("-")[0]
    assert store_evaluation.fn(Settings(home=harvested_home), result, sha + "0" * 52, result["data_snapshot"]) == result["evaluation_id"]
    assert len(stored()) == len(rows)


def test_kill_then_resume_repeats_the_same_losses(harvested_home, tmp_path):
    """``hmmr train`` killed with SIGKILL after its first checkpoint, run again: the resumed steps log
    exactly the losses of an uninterrupted run."""
    import json

    args = [sys.executable, "-m", "hmmr.cli", "train", "--query", SUBJECT, "--steps", "30", "--checkpoint-every", "10",
            "--config", json.dumps(SMALL), "--no-progress", "--home", str(harvested_home)]
    clean = tmp_path / "clean"
    subprocess.run([*args, "--run-dir", str(clean)], env=hmmr_env(harvested_home), cwd=REPO, check=True, timeout=900)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--run-dir", str(killed)], env=hmmr_env(harvested_home), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and not (killed / "last.pt").is_file():
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    from model.train import read_checkpoint

    assert read_checkpoint(killed / "last.pt")["step"] < 30, "the kill must land before the run ends"
    subprocess.run([*args, "--run-dir", str(killed)], env=hmmr_env(harvested_home), cwd=REPO, check=True, timeout=900)
    assert _metrics(killed) == _metrics(clean)
