"""Schema versions: a lakehouse written with schema version 1 (its tables created here with the v1
definitions, as hmmr wrote them) is refused for writing, migrated with DuckLake's ALTER TABLE, and
keeps every row; a migrated lakehouse has the columns of a new one."""

from __future__ import annotations

import pytest

from hmmr.config import Settings
from warehouse import schemas
from warehouse.catalog import read_only_query
from warehouse.lake import Lake, SchemaVersionError, attach, connect
from warehouse.migrations import MIGRATIONS, migrate, pending

# Schema version 1, exactly as warehouse/schemas.py defined it (commit b4e1967).
V1_TABLES = {
    "videos": "video_id VARCHAR, source VARCHAR, url VARCHAR, extractor VARCHAR, tags VARCHAR, status VARCHAR, "
              "error VARCHAR, raw_path VARCHAR, sha256 VARCHAR, size_bytes BIGINT, codec VARCHAR, width INTEGER, "
              "height INTEGER, fps DOUBLE, n_frames INTEGER, duration_s DOUBLE, n_shots INTEGER, n_detections INTEGER, "
              "n_tracks INTEGER, n_tracks_kept INTEGER, max_people INTEGER, detector VARCHAR, harvested_at TIMESTAMP, "
              "run_id VARCHAR, schema_version INTEGER",
    "shots": "video_id VARCHAR, shot_id INTEGER, start_frame INTEGER, end_frame INTEGER, start_s DOUBLE, end_s DOUBLE",
    "detections": "video_id VARCHAR, frame INTEGER, time_s DOUBLE, shot_id INTEGER, det_idx INTEGER, raw_track_id INTEGER, "
                  "x0 FLOAT, y0 FLOAT, x1 FLOAT, y1 FLOAT, score FLOAT, kp_x FLOAT[], kp_y FLOAT[], kp_conf FLOAT[]",
    "tracks": "video_id VARCHAR, track_id INTEGER, raw_track_id INTEGER, shot_id INTEGER, start_frame INTEGER, "
              "end_frame INTEGER, n_frames INTEGER, kept BOOLEAN, drop_reason VARCHAR, mean_visible FLOAT",
    "track_frames": "video_id VARCHAR, track_id INTEGER, frame INTEGER, center_x FLOAT, center_y FLOAT, scale FLOAT, "
                    "n_visible INTEGER, interpolated BOOLEAN",
}
V1_VIEWS = {"curated_tracks": "SELECT t.*, v.source, v.tags, v.url FROM lake.tracks t JOIN lake.videos v USING (video_id) WHERE t.kept"}
VIDEOS = ("yt:aaa", "yt:bbb", "yt:ccc")
# per video: (track_id, raw_track_id, start_frame, end_frame); raw track 1 is cut in two around frames 10-11
TRACKS = ((0, 1, 0, 9), (1, 1, 12, 19), (2, 2, 0, 19))


def _write_v1(settings: Settings) -> int:
    """A v1 lakehouse: 3 videos, 3 tracks each, 20 frames with 2 people (40 detections) per video,
    in one DuckLake transaction per video like hmmr v1 wrote them. Returns the snapshot after the first video."""
    settings.home.mkdir(parents=True)
    (settings.home / "lake").mkdir()
    con = connect()
    attach(con, settings)
    for table, cols in V1_TABLES.items():
        con.execute(f"CREATE TABLE lake.{table} ({cols})")
    for view, sql in V1_VIEWS.items():
        con.execute(f"CREATE VIEW lake.{view} AS {sql}")
    con.execute("CREATE TABLE lake.meta (key VARCHAR, value VARCHAR)")
    con.execute("INSERT INTO lake.meta VALUES ('schema_version', '1')")
    for v, vid in enumerate(VIDEOS):
        con.execute("BEGIN")
        con.execute("INSERT INTO lake.videos (video_id, source, tags, status, fps, n_frames, schema_version) "
                    "VALUES (?, ?, '{\"hashtag\": \"dance\"}', 'ok', 30.0, 20, 1)", [vid, f"https://example.org/{vid}"])
        con.execute("INSERT INTO lake.shots VALUES (?, 0, 0, 20, 0.0, 20 / 30)", [vid])
        con.execute(
            "INSERT INTO lake.detections SELECT ?, f, f / 30, 0, p - 1, p, 10.0 * p, f, 10.0 * p + 50, f + 120, 0.9, "
            "[CAST(100 * p + f + k AS FLOAT) FOR k IN range(25)], [CAST(v + f * k AS FLOAT) FOR k IN range(25)], "
            "[CAST((k % 10) / 10 AS FLOAT) FOR k IN range(25)] "
            "FROM range(20) AS a(f), range(1, 3) AS b(p), (SELECT ? AS v)", [vid, v])
        for t, raw, a, b in TRACKS:
            con.execute("INSERT INTO lake.tracks VALUES (?, ?, ?, 0, ?, ?, ?, true, NULL, 12.5)", [vid, t, raw, a, b, b - a + 1])
            con.execute("INSERT INTO lake.track_frames SELECT ?, ?, f, 320.0, 240.0, 1.2, 22, false FROM range(?, ?) AS r(f)",
                        [vid, t, a, b + 1])
        con.execute("COMMIT")
        if v == 0:
            first = con.execute("FROM ducklake_current_snapshot('lake')").fetchone()[0]
    con.close()
    return first


def _rows(settings: Settings, table: str, cols: str, at_version: int | None = None) -> list[tuple]:
    t = read_only_query(settings, f"SELECT {cols} FROM {table} ORDER BY ALL", at_version=at_version)
    return [tuple(r.values()) for r in t.to_pylist()]


def _columns(settings: Settings) -> dict[str, list[tuple]]:
    t = read_only_query(settings, "SELECT table_name, column_name, data_type FROM information_schema.columns "
                                  "WHERE table_catalog = 'lake' ORDER BY table_name, ordinal_position")
    out: dict[str, list[tuple]] = {}
    for r in t.to_pylist():
        out.setdefault(r["table_name"], []).append((r["column_name"], r["data_type"]))
    return out


def test_migrate_v1_keeps_every_row_and_fills_track_id(tmp_path):
    settings = Settings(home=tmp_path / "old")
    first = _write_v1(settings)
    v1_cols = {t: ", ".join(c.split(" ")[0] for c in cols.split(", ")) for t, cols in V1_TABLES.items()}
    before = {t: _rows(settings, t, cols) for t, cols in v1_cols.items()}
    assert [len(before[t]) for t in V1_TABLES] == [3, 3, 120, 9, 3 * (10 + 8 + 20)]

    with pytest.raises(SchemaVersionError, match="schema version 1.*hmmr warehouse migrate"):
        Lake(settings=settings)
    result = migrate(settings)
    assert (result.before, result.after, result.applied) == (1, schemas.SCHEMA_VERSION, tuple(m.version for m in MIGRATIONS))

    after = {t: _rows(settings, t, cols) for t, cols in v1_cols.items()}
    assert after == before  # every row, every value of the v1 columns
    ids = _rows(settings, "detections", "video_id, raw_track_id, frame, track_id")
    expected = []
    for vid in VIDEOS:
        for raw in (1, 2):
            for f in range(20):
                seg = [t for t, r, a, b in TRACKS if r == raw and a <= f <= b]
                expected.append((vid, raw, f, seg[0] if seg else None))
    assert sorted(ids, key=str) == sorted(expected, key=str)
    assert sum(r[3] is None for r in ids) == 3 * 2  # raw track 1 at frames 10 and 11: in no segment

    fresh = Settings(home=tmp_path / "new")
    with Lake(settings=fresh):
        pass
    assert _columns(settings) == _columns(fresh)  # same tables, columns, order and types as a new lakehouse
    assert read_only_query(settings, "SELECT count(*) AS n FROM training_windows").to_pylist() == [{"n": 3 * (0 + 0 + 1)}]

    with Lake(settings=settings) as lake:  # writable again; the old snapshot still reads as v1
        lake.write_video({"video_id": "yt:ddd", "status": "no_people"}, {})
    assert _rows(settings, "detections", v1_cols["detections"], at_version=first) == [r for r in before["detections"] if r[0] == VIDEOS[0]]
    assert migrate(settings).applied == ()  # nothing left to do


def test_pending_steps_and_refusals():
    assert [m.version for m in pending(1)] == list(range(2, schemas.SCHEMA_VERSION + 1))
    assert pending(schemas.SCHEMA_VERSION) == []
    with pytest.raises(ValueError, match="newer than this hmmr"):
        pending(schemas.SCHEMA_VERSION + 1)


def test_migrate_without_lakehouse_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no lakehouse"):
        migrate(Settings(home=tmp_path / "nothing"))
    assert not (tmp_path / "nothing").exists()
