"""Compaction: fewer, larger Parquet files with DuckLake's own maintenance functions.

One harvest commit per video writes one small file per table, and a re-harvest leaves delete files
behind. :func:`compact` runs, each as its own DuckLake transaction (retried when a harvest commits
at the same time):

1. ``ducklake_merge_adjacent_files``: small files of a table merged into files up to DuckLake's
   ``target_file_size``; rows keep their order, so each video's rows stay together and sorted;
2. ``ducklake_rewrite_data_files``: files with deleted rows rewritten without them, then merged again;
3. only with ``expire_older_than``: ``ducklake_expire_snapshots`` (time travel to snapshots older
   than that is given up) and ``ducklake_cleanup_old_files``, which deletes the files that no
   remaining snapshot reads. Without it every snapshot stays readable and the replaced files stay on
   disk.

No row is added, lost or changed: the same snapshot's rows before and after are identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hmmr.config import Settings
from warehouse import schemas
from warehouse.lake import ALIAS, Lake, require_lakehouse


@dataclass(frozen=True)
class CompactResult:
    files_before: dict[str, int]  # data files per table in the current snapshot
    files_after: dict[str, int]
    delete_files_before: int  # delete files (rows removed by a re-harvest) over all tables
    delete_files_after: int
    snapshots_expired: int
    files_removed: int  # Parquet files deleted from storage (only with expire_older_than)


def _files(lake: Lake) -> tuple[dict[str, int], int]:
    counts, deletes = {}, 0
    for table in schemas.TABLES:
        n, d = lake.con.execute(
            f"SELECT count(*), count(delete_file) FROM ducklake_list_files('{ALIAS}', '{table}')").fetchone()
        counts[table], deletes = n, deletes + d
    return counts, deletes


def compact(settings: Settings, *, expire_older_than: timedelta | None = None) -> CompactResult:
    """Merge small files and drop deleted rows physically; with ``expire_older_than``, also expire
    snapshots older than that and delete files nothing reads any more."""
    require_lakehouse(settings)
    with Lake(settings=settings) as lake:
        files_before, deletes_before = _files(lake)
        for call in ("ducklake_merge_adjacent_files('{db}')", "ducklake_rewrite_data_files('{db}', delete_threshold => 0.0)",
                     "ducklake_merge_adjacent_files('{db}')"):
            lake.retry(lambda call=call: lake.con.execute(f"CALL {call.format(db=ALIAS)}").fetchall())
        expired, removed = 0, 0
        if expire_older_than is not None:
            seconds = int(expire_older_than.total_seconds())
            expired = len(lake.retry(lambda: lake.con.execute(
                f"CALL ducklake_expire_snapshots('{ALIAS}', older_than => now() - INTERVAL {seconds} SECOND)").fetchall()))
            removed = len(lake.retry(lambda: lake.con.execute(
                f"CALL ducklake_cleanup_old_files('{ALIAS}', cleanup_all => true)").fetchall()))
        files_after, deletes_after = _files(lake)
    return CompactResult(files_before=files_before, files_after=files_after, delete_files_before=deletes_before,
                         delete_files_after=deletes_after, snapshots_expired=expired, files_removed=removed)
