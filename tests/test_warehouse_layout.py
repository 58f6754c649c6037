"""Layout: rows stored sorted by (video_id, track_id, frame); compaction with DuckLake's own functions
loses, adds and changes no row and leaves fewer files; the snapshot list; the data dictionary."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from hmmr.cli import app
from hmmr.config import Settings
from warehouse import dictionary, schemas
from warehouse.catalog import read_only_query
from warehouse.compaction import compact
from warehouse.lake import Lake, current_snapshot, list_snapshots


def _tables(video_id: str, n_frames: int, seed: int) -> dict:
    """Two people over ``n_frames`` frames, given in shuffled order; person 1 is track 0 in the first
    half and track 1 in the second, person 2 is track 2 throughout."""
    rng = np.random.default_rng(seed)
    frame = np.repeat(np.arange(n_frames), 2)
    raw = np.tile([1, 2], n_frames)
    track = np.where(raw == 2, 2, np.where(frame < n_frames // 2, 0, 1))
    order = rng.permutation(len(frame))
    n = len(frame)
    kps = rng.uniform(0, 640, (n, 25)).astype(np.float32)
    dets = {
        "video_id": [video_id] * n, "frame": frame[order].tolist(), "time_s": (frame[order] / 30).tolist(),
        "shot_id": [0] * n, "det_idx": (raw[order] - 1).tolist(), "raw_track_id": raw[order].tolist(),
        "x0": kps[:, 0], "y0": kps[:, 1], "x1": kps[:, 0] + 50, "y1": kps[:, 1] + 120, "score": np.full(n, 0.8),
        "kp_x": kps, "kp_y": kps[:, ::-1].copy(), "kp_conf": rng.uniform(0, 1, (n, 25)), "track_id": track[order].tolist(),
    }
    tf_track = np.concatenate([np.zeros(n_frames // 2, int), np.ones(n_frames - n_frames // 2, int), np.full(n_frames, 2)])
    tf_frame = np.concatenate([np.arange(n_frames), np.arange(n_frames)])
    m = len(tf_frame)
    frames = {"video_id": [video_id] * m, "track_id": tf_track.tolist()[::-1], "frame": tf_frame.tolist()[::-1],
              "center_x": np.full(m, 320.0), "center_y": np.full(m, 240.0), "scale": np.full(m, 1.1),
              "n_visible": [25] * m, "interpolated": [False] * m}
    return {"detections": schemas.to_arrow("detections", dets), "track_frames": schemas.to_arrow("track_frames", frames)}


def _write(lake: Lake, video_id: str, seed: int, n_frames: int = 12) -> None:
    lake.write_video({"video_id": video_id, "status": "ok", "tags": '{"hashtag": "dance"}'}, _tables(video_id, n_frames, seed))


def _content(settings: Settings, at_version: int | None = None) -> dict[str, list[dict]]:
    return {t: read_only_query(settings, f"SELECT * FROM {t} ORDER BY ALL", at_version=at_version).to_pylist()
            for t in schemas.TABLES}


def _parquet_files(settings: Settings) -> int:
    return len(list((settings.home / "lake").rglob("*.parquet")))


def test_rows_are_stored_sorted_by_video_track_frame(tmp_path):
    settings = Settings(home=tmp_path / "home")
    with Lake(settings=settings) as lake:
        _write(lake, "yt:b", seed=1)
        files = lake.query("SELECT data_file FROM ducklake_list_files('lake', 'detections')").to_pylist()
        tf_files = lake.query("SELECT data_file FROM ducklake_list_files('lake', 'track_frames')").to_pylist()
        stored = lake.query(f"SELECT track_id, frame, det_idx FROM read_parquet('{files[0]['data_file']}')").to_pylist()
        stored_tf = lake.query(f"SELECT track_id, frame FROM read_parquet('{tf_files[0]['data_file']}')").to_pylist()
    keys = [(r["track_id"], r["frame"], r["det_idx"]) for r in stored]
    assert len(keys) == 24 and keys == sorted(keys)  # in file order, although written shuffled
    assert [(r["track_id"], r["frame"]) for r in stored_tf] == sorted((r["track_id"], r["frame"]) for r in stored_tf)


def test_compact_merges_small_files_without_losing_or_duplicating_a_row(tmp_path):
    settings = Settings(home=tmp_path / "home")
    with Lake(settings=settings) as lake:
        for i in range(15):
            _write(lake, f"yt:{i:02d}", seed=i)
    first = compact(settings)  # 15 small files per table -> 1
    assert first.files_before["detections"] == 15 and first.files_after["detections"] == 1
    with Lake(settings=settings) as lake:
        for i in (3, 7):  # re-harvests: rows deleted out of the merged file (delete files) and written anew
            _write(lake, f"yt:{i:02d}", seed=100 + i)
        for i in range(15, 20):
            _write(lake, f"yt:{i:02d}", seed=i)
    before, snap, on_disk = _content(settings), current_snapshot(settings), _parquet_files(settings)
    assert len(before["videos"]) == 20 and len(before["detections"]) == 20 * 24 and len(before["track_frames"]) == 20 * 24

    res = compact(settings)
    assert res.delete_files_before > 0 and res.delete_files_after == 0
    assert res.files_before["detections"] == 8 and res.files_after["detections"] == 1
    assert sum(res.files_after.values()) < sum(res.files_before.values())
    after = _content(settings)
    assert after == before  # same rows, same values, none twice
    assert _content(settings, at_version=snap) == before  # the snapshot read before compaction: unchanged
    assert read_only_query(settings, "SELECT count(*) AS n, count(DISTINCT (video_id, frame, det_idx)) AS k "
                                     "FROM detections").to_pylist() == [{"n": 480, "k": 480}]
    assert _parquet_files(settings) >= on_disk  # without expiry, old files stay for time travel

    out = CliRunner().invoke(app, ["warehouse", "compact", "--expire-older-than", "0s", "--home", str(settings.home)])
    assert out.exit_code == 0, out.output
    assert "expired" in out.output and _content(settings) == before
    assert _parquet_files(settings) == 4  # one file each: videos, detections, track_frames (shots, tracks empty), meta
    assert len(list_snapshots(settings)) == 1  # only the current snapshot remains


def test_snapshots_command_lists_each_harvest_commit(tmp_path):
    settings = Settings(home=tmp_path / "home")
    with Lake(settings=settings) as lake:
        _write(lake, "yt:a", seed=1)
        _write(lake, "yt:b", seed=2)
    runner = CliRunner()
    out = runner.invoke(app, ["warehouse", "snapshots", "--json", "--home", str(settings.home)])
    assert out.exit_code == 0, out.output
    import json

    rows = json.loads(out.output)
    assert [r["commit_message"] for r in rows[-2:]] == ["video yt:a", "video yt:b"]
    assert rows[-1]["snapshot_id"] == current_snapshot(settings)
    table = runner.invoke(app, ["warehouse", "snapshots", "--home", str(settings.home)])
    assert table.exit_code == 0 and "video yt:b" in table.output and "tables_inserted_into" in table.output
    missing = runner.invoke(app, ["warehouse", "snapshots", "--home", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "no lakehouse" in missing.output


def test_committed_data_dictionary_is_the_generated_one():
    text = dictionary.render()
    assert dictionary.DOC_PATH.read_text() == text, "docs/data_dictionary.md is stale: run 'hmmr warehouse dictionary --write'"
    for table, cols in schemas.TABLES.items():
        assert f"### `{table}`" in text
        for c in cols:
            assert f"| `{c.name}` | {c.sql} |" in text
    for view in schemas.VIEWS:
        assert f"### `{view}`" in text


def test_every_view_column_is_documented():
    for view, cols in dictionary.view_columns().items():
        assert cols, view
        for name, _ in cols:
            unit, meaning = dictionary.view_column_doc(view, name)
            assert meaning, (view, name)
    with pytest.raises(KeyError, match="documented nowhere"):
        dictionary.view_column_doc("training_windows", "no_such_column")
