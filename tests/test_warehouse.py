"""The DuckLake lakehouse on real files: transactions per video, resume, concurrency, read-only SQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from hmmr.config import Settings
from warehouse import schemas
from warehouse.catalog import ReadOnlyQueryError, read_only_query
from warehouse.lake import Lake, current_snapshot, list_snapshots


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


@pytest.fixture(scope="module")
def one_video(tmp_path_factory) -> Settings:
    """A lakehouse with one video of 3 detections (3 snapshots), shared by the refusal cases."""
    settings = Settings(home=tmp_path_factory.mktemp("refusals") / "home")
    with Lake(settings=settings) as lake:
        _write(lake, "a", 3)
    return settings


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO videos (video_id) VALUES ('x')", "DELETE FROM videos", "COPY videos TO '/tmp/hmmr-leak.csv'",
     "ATTACH '/tmp/other.duckdb' AS other", "INSTALL httpfs", "SELECT * FROM read_csv('/etc/passwd')",
     "SET enable_external_access = true", "CREATE TABLE t AS SELECT 1", "DROP TABLE videos",
     "COPY (SELECT * FROM detections) TO '/tmp/hmmr-leak.parquet'", "UPDATE videos SET status = 'x'",
     "SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM glob('/etc/*')", "LOAD httpfs", "DETACH lake",
     "SELECT 1; DELETE FROM videos", "EXPORT DATABASE '/tmp/hmmr-export'", "CALL ducklake_expire_snapshots('lake')",
     "SELECT * FROM ducklake_cleanup_old_files('lake', cleanup_all => true)",
     "SELECT * FROM sqlite_scan('{home}/catalog.sqlite', 'ducklake_snapshot')",
     "WITH c AS (SELECT * FROM sqlite_query('{home}/catalog.sqlite', 'DELETE FROM ducklake_snapshot')) SELECT * FROM c",
     "EXPLAIN ANALYZE SELECT * FROM postgres_query('dbname=x', 'SELECT 1')",
     "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')"],
)
def test_read_only_sql_refuses(one_video, sql):
    settings = one_video
    with pytest.raises(ReadOnlyQueryError, match="read-only"):
        read_only_query(settings, sql.format(home=settings.home))
    assert read_only_query(settings, "SELECT count(*) AS n FROM videos").to_pylist() == [{"n": 1}]
    assert len(list_snapshots(settings)) == 3  # nothing was committed or expired
    assert not any(Path("/tmp").glob("hmmr-leak*")) and not Path("/tmp/hmmr-export").exists()


def test_read_only_sql_still_answers_queries(settings):
    with Lake(settings=settings) as lake:
        _write(lake, "a", 3)
        lake_file = lake.query("SELECT data_file FROM ducklake_list_files('lake', 'detections')").to_pylist()[0]["data_file"]
    rows = read_only_query(settings, "WITH s AS (SELECT count(*) AS n FROM ducklake_snapshots('lake')) "
                                     "SELECT (SELECT n FROM s) AS snaps, count(*) AS rows, list_sum(any_value(kp_x)) AS kx "
                                     "FROM detections").to_pylist()
    assert rows == [{"snaps": 3, "rows": 3, "kx": float(sum(range(25)))}]
    direct = read_only_query(settings, f"SELECT count(*) AS n FROM read_parquet('{lake_file}')").to_pylist()  # inside the warehouse
    assert direct == [{"n": 3}]
    plan = read_only_query(settings, "EXPLAIN SELECT * FROM tracks").to_pylist()
    assert plan and "explain_value" in plan[0]


def test_hmmr_sql_command_line_refuses_and_travels_in_time(settings):
    from typer.testing import CliRunner

    from hmmr.cli import app

    with Lake(settings=settings) as lake:
        _write(lake, "a", 3)
        first = current_snapshot(settings)
        _write(lake, "b", 4)
    runner = CliRunner()
    home = ["--home", str(settings.home)]
    res = runner.invoke(app, ["sql", "INSERT INTO videos (video_id) VALUES ('x')", *home])
    assert res.exit_code == 2 and "refused" in res.output and "INSERT" in res.output
    res = runner.invoke(app, ["sql", "SELECT * FROM read_csv('/etc/passwd')", *home])
    assert res.exit_code == 2 and "refused" in res.output and "root:" not in res.output
    count = "SELECT count(*) AS n FROM detections"
    now = runner.invoke(app, ["sql", count, "--format", "csv", *home])
    then = runner.invoke(app, ["sql", count, "--format", "csv", "--at-version", str(first), *home])
    assert (now.exit_code, now.output.split(), then.exit_code, then.output.split()) == (0, ["n", "7"], 0, ["n", "3"])


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


def test_append_videos_is_one_transaction_and_refuses_stored_ids(settings):
    ids = [f"bulk-{i}" for i in range(3)]
    batch = {
        "videos": schemas.to_arrow("videos", {n: [None] * 3 for n in schemas.column_names("videos")} | {"video_id": ids, "status": ["ok"] * 3}),
        "detections": pa.concat_tables([schemas.to_arrow("detections", _detections(v, 20_000)) for v in reversed(ids)]),
    }
    with Lake(settings=settings) as lake:
        before = lake.snapshots().num_rows
        lake.append_videos(batch, message="bulk load")
        assert lake.snapshots().num_rows == before + 1
        assert lake.snapshots()["commit_message"].to_pylist()[-1] == "bulk load"
        with pytest.raises(ValueError, match="already stored.*bulk-0"):
            lake.append_videos({"videos": batch["videos"].slice(0, 1)}, message="again")
        with pytest.raises(ValueError, match="needs a videos table"):
            lake.append_videos({"detections": batch["detections"]}, message="no videos")
        options = {r["option_name"]: r["value"] for r in lake.query("SELECT option_name, value FROM ducklake_options('lake')").to_pylist()}
        path = lake.query("SELECT data_file FROM ducklake_list_files('lake', 'detections')").to_pylist()[0]["data_file"]
        groups = lake.query(f"SELECT DISTINCT row_group_id, row_group_num_rows, compression FROM parquet_metadata('{path}') "
                            "WHERE path_in_schema = 'video_id' ORDER BY 1").to_pylist()
        order = lake.query(f"SELECT video_id, frame FROM read_parquet('{path}')").to_pylist()
    assert (options["parquet_compression"], options["parquet_version"], options["parquet_row_group_size"]) == ("zstd", "V2", "16384")
    assert len(groups) == 4 and max(g["row_group_num_rows"] for g in groups) <= 16384 and {g["compression"] for g in groups} == {"ZSTD"}
    assert [(r["video_id"], r["frame"]) for r in order] == sorted((v, f) for v in ids for f in range(20_000))
    assert read_only_query(settings, "SELECT count(*) AS n FROM detections").to_pylist() == [{"n": 60_000}]

