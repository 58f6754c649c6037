"""The command lines: ``hmmr dataset export|import`` and ``hmmr import posetrack|penn-action|tfrecord``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hmmr.cli import app
from hmmr.config import Settings
from warehouse.importers.openpose import import_openpose

from tests.test_import_penn_action import penn_file
from tests.test_import_posetrack import posetrack_file
from tests.test_import_tfrecord import example, frame_record, hmmr_sequence, sequence_kps

FIXTURE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"
runner = CliRunner()


@pytest.fixture(scope="module")
def source_home(tmp_path_factory, samples) -> Path:
    home = tmp_path_factory.mktemp("cli-source") / "home"
    import_openpose(FIXTURE, str(samples / "pose2sim_single_cam01.mp4"), Settings(home=home))
    return home


def test_dataset_export_and_import(source_home, tmp_path):
    out = tmp_path / "ds"
    res = runner.invoke(app, ["dataset", "export", "SELECT video_id FROM videos", "--to", str(out), "--home", str(source_home)])
    assert res.exit_code == 0, res.output
    assert "tracks 3" in res.output  # without track_id: every track of the videos, dropped ones too
    res = runner.invoke(app, ["dataset", "import", str(out), "--home", str(tmp_path / "h2")])
    assert res.exit_code == 0 and "imported 1 videos" in res.output, res.output
    res = runner.invoke(app, ["dataset", "import", str(out), "--home", str(tmp_path / "h2")])
    assert res.exit_code == 1 and "--replace" in res.output
    res = runner.invoke(app, ["dataset", "import", str(out), "--replace", "--home", str(tmp_path / "h2")])
    assert res.exit_code == 0 and "replaced 1" in res.output
    res = runner.invoke(app, ["dataset", "export", "INSERT INTO videos SELECT * FROM videos", "--to", str(tmp_path / "y"),
                              "--home", str(source_home)])
    assert res.exit_code == 2 and "refused" in res.output


def test_dataset_importers_and_crops_of_frame_folders(tmp_path):
    home = str(tmp_path / "home")
    pt = posetrack_file(tmp_path / "000342_mpii_test.json", "000342", 45, {5: {f: (300, 400) for f in range(45)}})
    res = runner.invoke(app, ["import", "posetrack", str(pt), "--home", home])
    assert res.exit_code == 0 and "posetrack18:000342: 45 frames, 1 people, 45 detections, 1 tracks kept" in res.output, res.output
    res = runner.invoke(app, ["import", "penn-action", str(penn_file(tmp_path / "0042.mat", 41)), "--home", home])
    assert res.exit_code == 0 and "penn_action:0042: 41 frames" in res.output, res.output
    (tmp_path / "seq.tfrecord").write_bytes(frame_record(example(hmmr_sequence(sequence_kps(40, 0)))))
    res = runner.invoke(app, ["import", "tfrecord", str(tmp_path / "seq.tfrecord"), "--home", home])
    assert res.exit_code == 0 and "40 frames, 1 people, 38 detections, 1 tracks kept" in res.output, res.output
    broken = bytearray((tmp_path / "seq.tfrecord").read_bytes())
    broken[-1] ^= 0x10
    (tmp_path / "broken.tfrecord").write_bytes(broken)
    res = runner.invoke(app, ["import", "tfrecord", str(tmp_path / "broken.tfrecord"), "--home", home])
    assert res.exit_code == 1 and "data CRC mismatch" in res.output
    # ground-truth videos are frame folders: exported with their rows, crops skipped and said so
    out = tmp_path / "gt"
    res = runner.invoke(app, ["dataset", "export", "SELECT video_id, track_id FROM curated_tracks", "--to", str(out),
                              "--crops", "jpeg", "--home", home])
    assert res.exit_code == 0 and "3 videos without a raw file skipped" in res.output, res.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["tables"]["tracks"]["rows"] == 3 and m["crops"]["frames"] == 0
    assert len(m["crops"]["skipped"]) == 3 and {"posetrack18:000342", "penn_action:0042"} <= set(m["crops"]["skipped"])
