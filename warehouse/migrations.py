"""Schema migrations: bring a lakehouse written with an older schema version up to
:data:`warehouse.schemas.SCHEMA_VERSION` with DuckLake's own ``ALTER TABLE`` (no table is rewritten
by hand; Parquet files written before a column was added read it as NULL, then the step fills it).

Each step runs in one transaction (one DuckLake snapshot) together with the version bump in the
``meta`` table, so a failed step leaves the lakehouse at the version before it. Snapshots taken
before a migration can still be read with ``hmmr sql --at-version N`` (with their old columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from hmmr.config import Settings
from warehouse import schemas
from warehouse.lake import ALIAS, attach, connect, require_lakehouse, stored_schema_version
from warehouse.windows import DEFAULT_T, window_rows_sql


@dataclass(frozen=True)
class Migration:
    """One step: ``statements`` (SQL, ``{db}`` = the attached lakehouse) take a lakehouse from
    ``version - 1`` to ``version``."""

    version: int
    summary: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        2,
        "detections.track_id: the curated segment of each detection, so one track's keypoints are read "
        "by (video_id, track_id, frame) without a join; filled from tracks (raw_track_id and frame range)",
        (
            "ALTER TABLE {db}.detections ADD COLUMN track_id INTEGER",
            "UPDATE {db}.detections AS d SET track_id = t.track_id FROM {db}.tracks AS t "
            "WHERE t.video_id = d.video_id AND t.raw_track_id = d.raw_track_id "
            "AND d.frame BETWEEN t.start_frame AND t.end_frame",
        ),
    ),
    Migration(
        3,
        "new tables: " + ", ".join(schemas.tables_added_in(3)) + "; track_windows filled from the stored frames "
        "(the training_windows view reads it)",
        tuple(schemas.create_sql(t, "{db}." + t) for t in schemas.tables_added_in(3))
        + ("INSERT INTO {db}.track_windows " + window_rows_sql(DEFAULT_T, db="{db}"),),
    ),
)


@dataclass(frozen=True)
class MigrationResult:
    before: int
    after: int
    applied: tuple[int, ...]  # versions reached, in order


def pending(stored: int) -> list[Migration]:
    """The steps from ``stored`` to the current version, in order.

    Raises ValueError when the lakehouse is newer than this code or a step is missing.
    """
    if stored > schemas.SCHEMA_VERSION:
        raise ValueError(f"the lakehouse has schema version {stored}, newer than this hmmr's {schemas.SCHEMA_VERSION}: upgrade hmmr")
    steps = [m for m in MIGRATIONS if m.version > stored]
    if [m.version for m in steps] != list(range(stored + 1, schemas.SCHEMA_VERSION + 1)):
        raise ValueError(f"no migration path from version {stored} to {schemas.SCHEMA_VERSION}")
    return steps


def migrate(settings: Settings) -> MigrationResult:
    """Apply every pending step to the lakehouse of ``settings``, one transaction each, then
    (re)create the views of :data:`warehouse.schemas.VIEWS` so they match this code.

    Raises FileNotFoundError when there is no lakehouse, ValueError when it is newer than this code.
    """
    require_lakehouse(settings)
    con = connect()
    try:
        attach(con, settings)
        before = stored_schema_version(con)
        if before is None:
            raise FileNotFoundError(f"the catalog of {settings.home} holds no hmmr lakehouse (no meta table)")
        applied = []
        for step in pending(before):
            _apply(con, step)
            applied.append(step.version)
        con.execute("BEGIN")
        for view, sql in schemas.VIEWS.items():
            con.execute(f"CREATE OR REPLACE VIEW {ALIAS}.{view} AS {sql.format(db=ALIAS)}")
        con.execute("COMMIT")
        return MigrationResult(before=before, after=stored_schema_version(con), applied=tuple(applied))
    finally:
        con.close()


def _apply(con: duckdb.DuckDBPyConnection, step: Migration) -> None:
    con.execute("BEGIN")
    try:
        con.execute(f"CALL ducklake_set_commit_message('{ALIAS}', 'hmmr', ?)", [f"migrate to schema version {step.version}"])
        for sql in step.statements:
            con.execute(sql.format(db=ALIAS))
        con.execute(f"UPDATE {ALIAS}.meta SET value = ? WHERE key = 'schema_version'", [str(step.version)])
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise
