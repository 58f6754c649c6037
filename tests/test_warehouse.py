"""The DuckLake lakehouse on real files: transactions per video, resume, concurrency, read-only SQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hmmr.config import Settings
from warehouse import schemas
from warehouse.catalog import ReadOnlyQueryError, read_only_query
from warehouse.lake import Lake, current_snapshot


def _detections(video_id: str, n: int) -> dict:
    kps = np.arange(n * 25, dtype=np.float32).reshape(n, 25)
    return {
        "video_id": [video_id] * n, "frame": list(range(n)), "time_s": [i / 30 for i in range(n)],
        "shot_id": [0] * n, "det_idx": [0] * n, "raw_track_id": [7] * n,
        "x0": np.zeros(n), "y0": np.zeros(n), "x1": np.full(n, 10.0), "y1": np.full(n, 20.0),
        "score": np.full(n, 0.9), "kp_x": kps, "kp_y": kps + 1, "kp_conf": np.full((n, 25), 0.5), "track_id": [0] * n,
    }


def _write(lake: Lake, video_id: str, n: int = 50) -> None:
    lake.write_video({"video_id": video_id, "status": "ok", "n_frames": n},
                     {"detections": schemas.to_arrow("detections", _detections(video_id, n))})


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_write_read_back_and_replace(settings):
    with Lake(settings=settings) as lake:
        _write(lake, "a", 50)
        _write(lake, "b", 30)
        _write(lake, "a", 50)  # re-harvest replaces, never duplicates
        snaps = lake.snapshots().num_rows
        assert lake.status_summary() == {"ok": 2}
        assert lake.done_video_ids() == {"a", "b"}
    rows = read_only_query(settings, "SELECT video_id, count(*) AS n FROM detections GROUP BY 1 ORDER BY 1").to_pylist()
    assert rows == [{"video_id": "a", "n": 50}, {"video_id": "b", "n": 30}]
    d = read_only_query(settings, "SELECT kp_x, kp_y FROM detections WHERE video_id = 'b' AND frame = 2").to_pylist()[0]
    assert d["kp_x"] == [float(v) for v in range(50, 75)] and d["kp_y"][0] == 51.0
    # every write is one snapshot: time travel sees the lake before the last write of b
    with Lake(settings=settings) as lake:
        _write(lake, "c", 5)
        assert lake.snapshots().num_rows == snaps + 1
    before = read_only_query(settings, "SELECT count(*) AS n FROM videos", at_version=snaps - 1).to_pylist()[0]["n"]
    assert before == 2


def test_failed_write_leaves_nothing(settings):
    with Lake(settings=settings) as lake:
        bad = schemas.to_arrow("detections", _detections("x", 3))
        with pytest.raises(ValueError, match="unexpected tables"):
            lake.write_video({"video_id": "x", "status": "ok"}, {"detections": bad, "nonsense": bad})
        with pytest.raises(ValueError, match="expected 25 values"):
            schemas.to_arrow("detections", {**_detections("x", 3), "kp_x": np.zeros((3, 24))})
        assert lake.query("SELECT count(*) AS n FROM videos").to_pylist()[0]["n"] == 0
        assert lake.query("SELECT count(*) AS n FROM detections").to_pylist()[0]["n"] == 0


def test_retry_failed_leaves_out_failures(settings):
    with Lake(settings=settings) as lake:
        lake.write_video({"video_id": "dead", "status": "download_failed", "error": "HTTP Error 404"}, {})
        lake.write_video({"video_id": "fine", "status": "no_people"}, {})
        assert lake.done_video_ids() == {"dead", "fine"}
        assert lake.done_video_ids(retry_failed=True) == {"fine"}


def test_two_writer_processes_exact_counts(settings):
    with Lake(settings=settings):
        pass
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(settings.home.parent.parent)!r})
        from hmmr.config import Settings
        from tests.test_warehouse import _write
        from warehouse.lake import Lake
        with Lake(settings=Settings(home=Path({str(settings.home)!r}))) as lake:
            for i in range(8):
                _write(lake, f"{{sys.argv[1]}}-{{i}}", 40)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name], cwd=str(schemas.__file__).rsplit("/warehouse", 1)[0])
             for name in ("p", "q")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    rows = read_only_query(settings, "SELECT count(*) AS v, (SELECT count(*) FROM detections) AS d FROM videos").to_pylist()
    assert rows == [{"v": 16, "d": 16 * 40}]


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO videos (video_id) VALUES ('x')", "DELETE FROM videos", "COPY videos TO '/tmp/hmmr-leak.csv'",
     "ATTACH '/tmp/other.duckdb' AS other", "INSTALL httpfs", "SELECT * FROM read_csv('/etc/passwd')",
     "SET enable_external_access = true", "CREATE TABLE t AS SELECT 1", "DROP TABLE videos"],
)
def test_read_only_sql_refuses(settings, sql):
    with Lake(settings=settings) as lake:
        _write(lake, "a", 3)
    with pytest.raises(ReadOnlyQueryError, match="read-only"):
        read_only_query(settings, sql)
    assert read_only_query(settings, "SELECT count(*) AS n FROM videos").to_pylist() == [{"n": 1}]


def test_query_without_lakehouse_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run 'hmmr harvest' first"):
        read_only_query(Settings(home=tmp_path / "nothing"), "SELECT 1")


def test_current_snapshot_names_what_a_reader_saw(settings):
    with Lake(settings=settings) as lake:
        _write(lake, "a", 4)
        first = current_snapshot(settings)
        assert first == lake.snapshots()["snapshot_id"].to_pylist()[-1]
        _write(lake, "b", 6)
    assert current_snapshot(settings) == first + 1
    seen = read_only_query(settings, "SELECT count(*) AS n FROM detections", at_version=first).to_pylist()
    assert seen == [{"n": 4}]
