"""The DuckLake lakehouse: Parquet data files plus a SQL catalog, opened through DuckDB.

Default (embedded): catalog ``HOME/catalog.sqlite`` (SQLite), data files under ``HOME/lake/``.
Deployed: ``Settings.catalog = "postgres:dbname=... host=..."`` for a PostgreSQL catalog shared by
several writers, and ``Settings.data_path = "s3://bucket/prefix/"`` for object storage.

The DuckDB extensions come from the ``duckdb-ext-*`` PyPI packages (DuckDB 1.4.4), so nothing is
downloaded at run time.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from hmmr.config import Settings
from warehouse import schemas, storage
from warehouse.windows import DEFAULT_T, window_rows_sql

ALIAS = "lake"
RETRYABLE_STATUSES = ("download_failed", "detector_failed", "failed")  # may succeed on a new try
EXTENSIONS = ("ducklake", "sqlite", "postgres_scanner", "httpfs")
# Parquet settings a new lakehouse is created with (DuckLake options, kept in the catalog). Measured on
# 450 k synthetic detections (benchmarks/lakehouse.py): DuckDB's defaults (snappy, v1, row groups of
# 122,880 rows) take 321 bytes per detection and 150 ms to read one track; zstd with Parquet v2
# encodings (byte-stream-split floats) 242 bytes; row groups of 16,384 rows bring the one-track read
# to 16 ms (the per-row-group min/max statistics skip all but the track's rows) at the same size.
PARQUET_OPTIONS = {"parquet_compression": "zstd", "parquet_version": "2", "parquet_row_group_size": "16384"}


def extension_directory() -> Path:
    import duckdb_ext  # namespace package of the duckdb-ext-* wheels

    return Path(next(iter(duckdb_ext.__path__))) / "extensions"


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that loads extensions only from the installed packages."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute(f"SET extension_directory = '{extension_directory()}'")
    con.execute("LOAD ducklake")
    return con


def catalog_uri(settings: Settings) -> str:
    if settings.catalog:
        if settings.catalog.startswith("postgres:"):
            return f"ducklake:{settings.catalog}"
        raise ValueError(f"unsupported catalog {settings.catalog!r}: use 'postgres:<libpq string>' or leave unset for SQLite")
    return f"ducklake:sqlite:{(settings.home / 'catalog.sqlite').resolve()}"


def data_path(settings: Settings) -> str:
    return settings.data_path or f"{(settings.home / 'lake').resolve()}/"


def attach(con: duckdb.DuckDBPyConnection, settings: Settings, *, read_only: bool = False,
           snapshot: int | None = None) -> None:
    """Attach the lakehouse as ``lake`` on ``con`` (loading the catalog's extension first)."""
    uri = catalog_uri(settings)
    con.execute("LOAD postgres_scanner" if uri.startswith("ducklake:postgres:") else "LOAD sqlite")
    if storage.is_s3(data_path(settings)):
        storage.configure_duckdb(con, settings)
    opts = [f"DATA_PATH '{data_path(settings)}'"]
    if read_only:
        opts.append("READ_ONLY")
    if snapshot is not None:
        opts.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    con.execute(f"ATTACH '{uri}' AS {ALIAS} ({', '.join(opts)})")


def require_lakehouse(settings: Settings) -> None:
    """Raise FileNotFoundError unless the SQLite catalog exists (a PostgreSQL catalog is assumed there)."""
    if not settings.catalog and not (settings.home / "catalog.sqlite").exists():
        raise FileNotFoundError(f"no lakehouse at {settings.home} (run 'hmmr harvest' first, or set HMMR_HOME)")


def current_snapshot(settings: Settings) -> int:
    """Id of the lakehouse's latest committed snapshot (DuckLake's ``ducklake_current_snapshot``).

    Name it beside anything read from the lakehouse (a dataset export, a training run): querying
    with ``AT (VERSION => n)`` / ``hmmr sql --at-version n`` later sees exactly the same rows.
    Raises FileNotFoundError when there is no lakehouse yet.
    """
    require_lakehouse(settings)
    con = connect()
    try:
        attach(con, settings, read_only=True)
        return int(con.execute(f"FROM ducklake_current_snapshot('{ALIAS}')").fetchone()[0])
    finally:
        con.close()


class SchemaVersionError(RuntimeError):
    """The lakehouse was written with another schema version than :data:`warehouse.schemas.SCHEMA_VERSION`."""


def stored_schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """Schema version recorded in the attached lakehouse's ``meta`` table; None for a new lakehouse."""
    has_meta = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = 'meta'", [ALIAS]
    ).fetchone()[0]
    if not has_meta:
        return None
    row = con.execute(f"SELECT value FROM {ALIAS}.meta WHERE key = 'schema_version'").fetchone()
    return None if row is None else int(row[0])


def _checked(payload: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """``payload`` sorted for storage, after checking every table against :mod:`warehouse.schemas`."""
    for name, table in payload.items():
        expected = schemas.arrow_schema(name)
        if not table.schema.equals(expected, check_metadata=False):
            raise ValueError(f"{name}: schema differs from warehouse.schemas:\n{table.schema}\nexpected:\n{expected}")
    return {name: sort_rows(name, table) for name, table in payload.items()}


def _derived(payload: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """``payload`` plus the tables derived from it (:data:`warehouse.schemas.DERIVED_TABLES`): the
    ``track_windows`` of its kept tracks, computed from its tracks, track frames and detections with
    the SQL that defines them (:func:`warehouse.windows.window_rows_sql`)."""
    con = duckdb.connect()
    try:
        for name in ("tracks", "track_frames", "detections"):
            con.register(name, payload.get(name, schemas.to_arrow(name, {c: [] for c in schemas.column_names(name)})))
        rows = con.execute(window_rows_sql(DEFAULT_T, db="temp.main")).fetch_arrow_table()
    finally:
        con.close()
    return payload | {"track_windows": sort_rows("track_windows", rows.cast(schemas.arrow_schema("track_windows")))}


def sort_rows(table: str, rows: pa.Table) -> pa.Table:
    """``rows`` of ``table`` in storage order (:data:`warehouse.schemas.SORT_KEYS`, NULLs last)."""
    return rows.sort_by([(k, "ascending") for k in schemas.SORT_KEYS[table]]) if rows.num_rows > 1 else rows


def list_snapshots(settings: Settings) -> pa.Table:
    """Every snapshot of the lakehouse, oldest first (DuckLake's ``ducklake_snapshots``): id, time,
    schema version, changes, author and commit message (``video <id>`` for a harvest commit)."""
    require_lakehouse(settings)
    con = connect()
    try:
        attach(con, settings, read_only=True)
        return con.execute(f"SELECT * FROM ducklake_snapshots('{ALIAS}') ORDER BY snapshot_id").fetch_arrow_table()
    finally:
        con.close()


def _is_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "conflict" in text or "database is locked" in text or "busy" in text


class Lake:
    """Read-write access for the harvest: one transaction per video.

    Usage: ``with Lake(settings=s) as lake: lake.write_video(row, tables)``.

    A lakehouse written with an older schema version is refused with :class:`SchemaVersionError`
    until ``hmmr warehouse migrate`` (:func:`warehouse.migrations.migrate`) has brought it up to date.
    """

    def __init__(self, *, settings: Settings, max_retries: int = 20):
        self.settings = settings
        self.max_retries = max_retries
        settings.home.mkdir(parents=True, exist_ok=True)
        if not settings.data_path:
            (settings.home / "lake").mkdir(parents=True, exist_ok=True)
        self.con = connect()
        self.retry(lambda: attach(self.con, settings))
        self.retry(self._create)

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def retry(self, fn):
        """Run ``fn``, retrying with jittered backoff when another writer holds the catalog."""
        for attempt in range(self.max_retries + 1):
            try:
                return fn()
            except (duckdb.TransactionException, duckdb.IOException, duckdb.CatalogException) as exc:
                try:
                    self.con.execute("ROLLBACK")
                except duckdb.Error:
                    pass
                if attempt == self.max_retries or not _is_conflict(exc):
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))

    def _create(self) -> None:
        stored = stored_schema_version(self.con)
        if stored is not None and stored != schemas.SCHEMA_VERSION:
            hint = "run 'hmmr warehouse migrate'" if stored < schemas.SCHEMA_VERSION else "upgrade hmmr"
            raise SchemaVersionError(
                f"the lakehouse at {catalog_uri(self.settings)} has schema version {stored}, this hmmr writes "
                f"version {schemas.SCHEMA_VERSION}: {hint}")
        self.con.execute("BEGIN")
        if stored is None:
            for option, value in PARQUET_OPTIONS.items():
                self.con.execute(f"CALL ducklake_set_option('{ALIAS}', '{option}', '{value}')")
        for table in schemas.TABLES:
            self.con.execute(schemas.create_sql(table, f"{ALIAS}.{table}"))
        for view, sql in schemas.VIEWS.items():
            self.con.execute(f"CREATE VIEW IF NOT EXISTS {ALIAS}.{view} AS {sql.format(db=ALIAS)}")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {ALIAS}.meta (key VARCHAR, value VARCHAR)")
        if not self.con.execute(f"SELECT 1 FROM {ALIAS}.meta WHERE key = 'schema_version'").fetchall():
            self.con.execute(f"INSERT INTO {ALIAS}.meta VALUES ('schema_version', '{schemas.SCHEMA_VERSION}')")
        self.con.execute("COMMIT")

    def write_video(self, video_row: dict, tables: dict[str, pa.Table]) -> None:
        """Replace every row of ``video_row['video_id']`` with this row and these tables, atomically.

        ``tables`` maps table names (``shots``, ``detections``, ``tracks``, ``track_frames``) to Arrow
        tables built with :func:`warehouse.schemas.to_arrow`; missing tables mean no rows. Rows are
        stored sorted by :data:`warehouse.schemas.SORT_KEYS`. The commit is one DuckLake snapshot whose
        commit message names the video (``hmmr warehouse snapshots``).
        """
        unknown = set(tables) - set(schemas.VIDEO_TABLES) | ({"videos", *schemas.DERIVED_TABLES} & set(tables))
        if unknown:
            raise ValueError(f"write_video: unexpected tables {sorted(unknown)}")
        payload = _derived(_checked({"videos": schemas.row_to_arrow("videos", video_row), **tables}))
        info = json.dumps({k: video_row.get(k) for k in ("run_id", "status", "detector")}, default=str)
        self.retry(lambda: self._write(video_row["video_id"], payload, info))

    def _write(self, video_id: str, payload: dict[str, pa.Table], info: str) -> None:
        con = self.con
        con.execute("BEGIN")
        con.execute(f"CALL ducklake_set_commit_message('{ALIAS}', 'hmmr', ?, extra_info => ?)", [f"video {video_id}", info])
        exists = con.execute(f"SELECT 1 FROM {ALIAS}.videos WHERE video_id = ?", [video_id]).fetchall()
        if exists:  # a re-harvest (e.g. --retry-failed): replace the video's rows
            for table in schemas.VIDEO_TABLES:
                con.execute(f"DELETE FROM {ALIAS}.{table} WHERE video_id = ?", [video_id])
        self._insert(payload)
        con.execute("COMMIT")

    def _insert(self, payload: dict[str, pa.Table]) -> None:
        for name, table in payload.items():
            if table.num_rows:
                self.con.register("_incoming", table)
                self.con.execute(f"INSERT INTO {ALIAS}.{name} SELECT * FROM _incoming")
                self.con.unregister("_incoming")

    def append_videos(self, tables: dict[str, pa.Table], *, message: str) -> None:
        """Insert many new videos' rows (``tables`` holds a ``videos`` table and any others) in one
        transaction: a bulk load (an import, the benchmark), much faster than one commit per video.
        Rows are sorted by :data:`warehouse.schemas.SORT_KEYS` within the batch.

        Raises ValueError when a table is unknown or off-schema, or a video is already stored (use
        :meth:`write_video` to replace one).
        """
        if "videos" not in tables or set(tables) - set(schemas.VIDEO_TABLES) or set(tables) & set(schemas.DERIVED_TABLES):
            raise ValueError(f"append_videos: needs a videos table and only warehouse tables, got {sorted(tables)}")
        payload = _derived(_checked(tables))
        self.retry(lambda: self._append(payload, message))

    def _append(self, payload: dict[str, pa.Table], message: str) -> None:
        con = self.con
        con.execute("BEGIN")
        con.execute(f"CALL ducklake_set_commit_message('{ALIAS}', 'hmmr', ?)", [message])
        con.register("_incoming", payload["videos"].select(["video_id"]))
        stored = con.execute(f"SELECT video_id FROM {ALIAS}.videos WHERE video_id IN (SELECT video_id FROM _incoming) LIMIT 5").fetchall()
        con.unregister("_incoming")
        if stored:
            con.execute("ROLLBACK")
            raise ValueError(f"append_videos: already stored: {[r[0] for r in stored]}")
        self._insert(payload)
        con.execute("COMMIT")

    def replace_rows(self, tables: dict[str, pa.Table], *, key: str, message: str) -> None:
        """Write rows of tables that are not per-video (e.g. ``evaluations``, the mocap tables) in one
        transaction: the stored rows whose ``key`` column holds a value found in the incoming rows are
        deleted first, so writing the same thing twice leaves one copy. Rows are sorted by
        :data:`warehouse.schemas.SORT_KEYS`.

        Raises ValueError when a table is unknown, a per-video table, lacks ``key`` or is off-schema.
        """
        bad = set(tables) - (set(schemas.TABLES) - set(schemas.VIDEO_TABLES))
        if bad or any(key not in t.column_names for t in tables.values()):
            raise ValueError(f"replace_rows: needs non-video warehouse tables with a {key!r} column, got {sorted(tables)}")
        payload = _checked(tables)
        self.retry(lambda: self._replace(payload, key, message))

    def _replace(self, payload: dict[str, pa.Table], key: str, message: str) -> None:
        con = self.con
        con.execute("BEGIN")
        con.execute(f"CALL ducklake_set_commit_message('{ALIAS}', 'hmmr', ?)", [message])
        for name, table in payload.items():
            con.register("_keys", table.select([key]))
            con.execute(f"DELETE FROM {ALIAS}.{name} WHERE {key} IN (SELECT {key} FROM _keys)")
            con.unregister("_keys")
        self._insert(payload)
        con.execute("COMMIT")

    def done_video_ids(self, *, retry_failed: bool = False) -> set[str]:
        """Ids with a stored row. With ``retry_failed``, failures that may succeed on a new try
        (:data:`RETRYABLE_STATUSES`) are left out so they run again."""
        where = f"WHERE status NOT IN {RETRYABLE_STATUSES}" if retry_failed else ""
        return {r[0] for r in self.con.execute(f"SELECT video_id FROM {ALIAS}.videos {where}").fetchall()}

    def query(self, sql: str, params: list | None = None) -> pa.Table:
        """Run SQL with the lakehouse as the default database (trusted callers only; users go
        through :func:`warehouse.catalog.read_only_query`)."""
        self.con.execute(f"USE {ALIAS}")
        return self.con.execute(sql, params or []).fetch_arrow_table()

    def snapshots(self) -> pa.Table:
        """DuckLake's snapshot list: one per committed transaction."""
        return self.con.execute(f"SELECT * FROM ducklake_snapshots('{ALIAS}')").fetch_arrow_table()

    def status_summary(self) -> dict[str, int]:
        rows = self.con.execute(f"SELECT status, count(*) FROM {ALIAS}.videos GROUP BY status").fetchall()
        return dict(rows)
