"""Dataset export/import: Parquet + manifest + crops, checked on a real video's real OpenPose output.

The lakehouse is filled with ``warehouse.importers.openpose.import_openpose`` from the Pose2Sim
OpenPose JSON of ``samples/pose2sim_single_cam01.mp4`` (tests/data), so the tracks and boxes are the
real ones and the crops are decoded from the real video.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from hmmr.config import Settings
from warehouse.catalog import ReadOnlyQueryError, read_only_query
from warehouse.exchange.crops import crop, crop_matrix
from warehouse.exchange.dataset import TABLES, DatasetError, export_dataset, import_dataset, sha256_file, verify_dataset
from warehouse.importers.openpose import import_openpose
from warehouse.lake import current_snapshot

FIXTURE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"
QUERY = "SELECT video_id, track_id FROM curated_tracks"


@pytest.fixture(scope="module")
def source_home(tmp_path_factory, samples) -> Path:
    home = tmp_path_factory.mktemp("source") / "home"
    import_openpose(FIXTURE, str(samples / "pose2sim_single_cam01.mp4"), Settings(home=home))
    return home


@pytest.fixture(scope="module")
def exported(source_home, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "ds"
    export_dataset(Settings(home=source_home), QUERY, out, crops="jpeg")
    return out


def rows(home: Path, sql: str) -> list[dict]:
    return read_only_query(Settings(home=home), sql).to_pylist()


def test_manifest_names_snapshot_counts_and_checksums(source_home, exported):
    m = json.loads((exported / "manifest.json").read_text())
    assert m["snapshot_id"] == current_snapshot(Settings(home=source_home)) and m["schema_version"] >= 1
    kept = rows(source_home, "SELECT video_id, track_id, raw_track_id, start_frame, end_frame FROM curated_tracks ORDER BY track_id")
    assert len(kept) == 2  # subject and bystander; the 3rd person of frame 37 is dropped
    expect = {
        "videos": 1, "shots": len(rows(source_home, "SELECT * FROM shots")), "tracks": 2,
        "track_frames": sum(t["end_frame"] - t["start_frame"] + 1 for t in kept),
        "detections": rows(source_home, "SELECT count(*) AS n FROM detections d JOIN curated_tracks t ON d.video_id = t.video_id "
                                        "AND d.raw_track_id = t.raw_track_id AND d.frame BETWEEN t.start_frame AND t.end_frame")[0]["n"],
    }
    assert {n: t["rows"] for n, t in m["tables"].items()} == expect
    for name in TABLES:
        assert pq.read_table(exported / f"{name}.parquet").num_rows == expect[name]
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert sorted(m["files"]) == files
    assert m["crops"]["frames"] == expect["track_frames"] == len([f for f in files if f.endswith(".jpg")])


def test_export_import_export_is_bit_identical(exported, tmp_path):
    other = tmp_path / "other-home"
    summary = import_dataset(exported, Settings(home=other))
    assert summary.videos == 1 and summary.replaced == 0
    again = tmp_path / "again"
    m2 = export_dataset(Settings(home=other), QUERY, again)
    m1 = json.loads((exported / "manifest.json").read_text())
    for name in TABLES:
        f = f"{name}.parquet"
        assert m2["files"][f]["sha256"] == m1["files"][f]["sha256"], name
        assert (again / f).read_bytes() == (exported / f).read_bytes()
        assert m2["tables"][name]["rows"] == m1["tables"][name]["rows"]
    # and the rows in the new lakehouse are exactly the exported ones
    got = read_only_query(Settings(home=other), "SELECT * FROM detections ORDER BY video_id, track_id, frame, det_idx")
    assert got.to_pylist() == pq.read_table(exported / "detections.parquet").to_pylist()


def test_import_refuses_damaged_or_present_data(exported, source_home, tmp_path):
    with pytest.raises(DatasetError, match="already in"):
        import_dataset(exported, Settings(home=source_home))
    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    table = pq.read_table(bad / "tracks.parquet")
    pq.write_table(table.slice(0, 1), bad / "tracks.parquet")
    jpg = next(bad.rglob("*.jpg"))
    jpg.write_bytes(jpg.read_bytes()[:-10])
    with pytest.raises(DatasetError) as err:
        verify_dataset(bad)
    assert "tracks.parquet: checksum mismatch" in str(err.value) and f"{jpg.relative_to(bad).as_posix()}: checksum mismatch" in str(err.value)
    (bad / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="no manifest.json"):
        import_dataset(bad, Settings(home=tmp_path / "h"))
    assert not (tmp_path / "h" / "catalog.sqlite").exists()


def test_crops_are_the_hmmr_crop(exported, samples):
    """The crop centre is the box centre, a 150 px person is 112 px (150 of the 300 window, at 224)."""
    m = crop_matrix(640.0, 400.0, 0.5)
    np.testing.assert_allclose(m @ [640.0, 400.0, 1.0], [112.0, 112.0])
    np.testing.assert_allclose((m @ [640.0, 700.0, 1.0])[1] - (m @ [640.0, 400.0, 1.0])[1], 300 * 0.5 * 224 / 300)
    frames = pq.read_table(exported / "track_frames.parquet").to_pylist()
    index = pq.read_table(exported / "crops_index.parquet").to_pylist()
    assert [(r["video_id"], r["track_id"], r["frame"]) for r in index] == sorted((r["video_id"], r["track_id"], r["frame"]) for r in frames)
    r = next(f for f in frames if f["frame"] == 50 and f["track_id"] == index[-1]["track_id"])
    img = cv2.imread(str(exported / next(i["file"] for i in index if (i["track_id"], i["frame"]) == (r["track_id"], 50))))
    assert img.shape == (224, 224, 3)
    cap = cv2.VideoCapture(str(samples / "pose2sim_single_cam01.mp4"))
    for _ in range(51):
        ok, bgr = cap.read()
    expect = cv2.cvtColor(crop(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), r["center_x"], r["center_y"], r["scale"]), cv2.COLOR_RGB2BGR)
    assert np.abs(img.astype(int) - expect.astype(int)).mean() < 4  # JPEG q95 and decoder differences only
    det = [d for d in pq.read_table(exported / "detections.parquet").to_pylist() if d["frame"] == 50]
    kp = next(np.array([d["kp_x"], d["kp_y"]]).T for d in det if abs((d["x0"] + d["x1"]) / 2 - r["center_x"]) < 80)
    vis = kp[(kp > 0).all(1)]
    in_crop = (crop_matrix(r["center_x"], r["center_y"], r["scale"]) @ np.c_[vis, np.ones(len(vis))].T).T
    assert (in_crop > 0).all() and (in_crop < 224).all()  # the whole person is inside the crop
    assert 90 < np.ptp(in_crop[:, 1]) < 135  # about 112 px tall


def test_mp4_crops_and_older_snapshot(source_home, tmp_path):
    settings = Settings(home=source_home)
    first = current_snapshot(settings)
    m = export_dataset(settings, "SELECT video_id, track_id FROM curated_tracks ORDER BY track_id DESC LIMIT 1",
                       tmp_path / "mp4", crops="mp4", at_version=first)
    assert m["snapshot_id"] == first and m["tables"]["tracks"]["rows"] == 1
    mp4 = [f for f in m["files"] if f.endswith(".mp4")]
    assert len(mp4) == 1
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=width,height,nb_read_frames",
                          "-of", "json", str(tmp_path / "mp4" / mp4[0])], capture_output=True, text=True, check=True)
    stream = json.loads(out.stdout)["streams"][0]
    assert (stream["width"], stream["height"], int(stream["nb_read_frames"])) == (224, 224, m["tables"]["track_frames"]["rows"])


def test_export_refusals(source_home, tmp_path):
    settings = Settings(home=source_home)
    with pytest.raises(ReadOnlyQueryError):
        export_dataset(settings, "DELETE FROM tracks", tmp_path / "x")
    with pytest.raises(ReadOnlyQueryError):
        export_dataset(settings, "SELECT * FROM read_csv('/etc/passwd')", tmp_path / "x")
    with pytest.raises(DatasetError, match="video_id"):
        export_dataset(settings, "SELECT track_id FROM curated_tracks", tmp_path / "x")
    with pytest.raises(DatasetError, match="no tracks"):
        export_dataset(settings, "SELECT video_id, track_id FROM curated_tracks WHERE false", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        export_dataset(settings, QUERY, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_older_schema_dataset_is_migrated_on_import_newer_refused(exported, tmp_path):
    """A schema-1 dataset (no detections.track_id) gets the column from the lakehouse's migration."""
    old = tmp_path / "v1"
    shutil.copytree(exported, old)
    full = pq.read_table(exported / "detections.parquet")
    pq.write_table(full.drop_columns(["track_id"]), old / "detections.parquet")
    m = json.loads((old / "manifest.json").read_text())
    m["schema_version"] = 1
    m["files"]["detections.parquet"] = {"sha256": sha256_file(old / "detections.parquet"),
                                        "bytes": (old / "detections.parquet").stat().st_size}
    (old / "manifest.json").write_text(json.dumps(m))
    home = tmp_path / "home"
    import_dataset(old, Settings(home=home))
    got = read_only_query(Settings(home=home), "SELECT * FROM detections ORDER BY video_id, track_id, frame, det_idx")
    assert got.to_pylist() == full.to_pylist() and None not in got.column("track_id").to_pylist()
    m["schema_version"] = 99
    (old / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="newer than this hmmr"):
        import_dataset(old, Settings(home=tmp_path / "h2"))
