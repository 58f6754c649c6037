"""``hmmr dataset export|import``: a self-contained, versioned dataset folder.

Layout of an export folder::

    manifest.json          format, schema version, lakehouse snapshot, query, row counts, sha256 of every file
    videos.parquet         the selected tracks' videos
    shots.parquet          those videos' shots
    tracks.parquet         the selected tracks
    track_frames.parquet   their frames' smoothed boxes
    detections.parquet     their detections (``detections.track_id`` is one of them)
    crops_index.parquet    with --crops: video_id, track_id, frame -> crop file (and frame in it)
    crops/<video>/...      with --crops: 224 x 224 crops (JPEG per frame, or MP4 per track)

QUERY is read-only SQL over the catalog views (run through :func:`warehouse.catalog.read_only_query`)
and must return a ``video_id`` column, plus ``track_id`` to pick tracks (without it every track of
the returned videos is taken). Everything is read at one snapshot, named in the manifest, so the
same export can be made again later with ``--at-version``. Other people's detections in the same
videos (outside the selected tracks) are not exported, so a ``videos`` row's counts
(``n_detections`` ...) describe the whole video, not the export.

Parquet files are written in storage order (:data:`warehouse.schemas.SORT_KEYS`) with fixed writer
settings: the same rows give the same bytes, so an export, imported elsewhere and exported again with
the same query, has the same checksums (tested).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hmmr.config import Settings
from warehouse import migrations, schemas
from warehouse.catalog import read_only_query
from warehouse.exchange import crops as crops_mod
from warehouse.lake import ALIAS, Lake, attach, connect, current_snapshot

FORMAT = "hmmr-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TABLES = ("videos", "shots", "tracks", "track_frames", "detections")
_SELECT = {  # rows of each table for the selected tracks in temp table ``sel``
    "videos": "WHERE t.video_id IN (SELECT video_id FROM sel)",
    "shots": "WHERE t.video_id IN (SELECT video_id FROM sel)",
    "tracks": "SEMI JOIN sel s ON t.video_id = s.video_id AND t.track_id = s.track_id",
    "track_frames": "SEMI JOIN sel s ON t.video_id = s.video_id AND t.track_id = s.track_id",
    "detections": "SEMI JOIN sel s ON t.video_id = s.video_id AND t.track_id = s.track_id",
}
_PARQUET = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


class DatasetError(Exception):
    """The export cannot be made, or a dataset folder is incomplete, altered or incompatible."""


@dataclass(frozen=True)
class ImportSummary:
    snapshot_id: int  # snapshot of the source lakehouse the dataset was read at
    rows: dict[str, int]
    videos: int
    replaced: int  # videos that were already in the target lakehouse


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def export_dataset(settings: Settings, query: str, out: Path, *, crops: str | None = None,
                   at_version: int | None = None) -> dict:
    """Write the dataset QUERY selects into the new or empty folder ``out``; returns the manifest.

    Raises :class:`warehouse.catalog.ReadOnlyQueryError` for a query that is not read-only, and
    :class:`DatasetError` for a non-empty ``out``, a query without ``video_id`` or selecting nothing.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty: export into a new folder")
    snapshot = current_snapshot(settings) if at_version is None else int(at_version)
    keys = read_only_query(settings, query, at_version=snapshot)
    if "video_id" not in keys.column_names:
        raise DatasetError(f"the query must return a video_id column (and track_id to pick tracks); it returned {keys.column_names}")
    key_cols = [c for c in ("video_id", "track_id") if c in keys.column_names]
    tables = _read_selection(settings, snapshot, keys.select(key_cols))
    if tables["tracks"].num_rows == 0:
        raise DatasetError("the query selected no tracks")
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "schema_version": schemas.SCHEMA_VERSION,
        "snapshot_id": snapshot, "query": query,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tables": {}, "files": {},
    }
    try:
        for name, table in tables.items():
            pq.write_table(table, out / f"{name}.parquet", **_PARQUET)
            manifest["tables"][name] = {"file": f"{name}.parquet", "rows": table.num_rows}
        if crops:
            got = crops_mod.write_crops(out, tables["videos"], tables["track_frames"], crops)
            pq.write_table(got.index, out / "crops_index.parquet", **_PARQUET)
            manifest["crops"] = {"format": crops, "size": crops_mod.CROP_SIZE, "window": crops_mod.WINDOW,
                                 "index": "crops_index.parquet", "frames": got.index.num_rows, "skipped": got.skipped}
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            manifest["files"][path.relative_to(out).as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")  # last: marks it complete
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return manifest


def _read_selection(settings: Settings, snapshot: int, keys: pa.Table) -> dict[str, pa.Table]:
    """The selected tracks' rows of every exported table, at ``snapshot``, in storage order
    (:data:`warehouse.schemas.SORT_KEYS`)."""
    con = connect()
    try:
        attach(con, settings, read_only=True, snapshot=snapshot)
        con.register("_keys", keys)
        on = " AND ".join(f"t.{c} = k.{c}" for c in keys.column_names)
        con.execute("CREATE TEMP TABLE sel AS SELECT DISTINCT t.video_id, t.track_id "
                    f"FROM {ALIAS}.tracks t SEMI JOIN _keys k ON {on}")
        out = {}
        for name in TABLES:
            cols = ", ".join(f"t.{c}" for c in schemas.column_names(name))
            order = ", ".join(f"t.{c}" for c in schemas.SORT_KEYS[name])
            got = con.execute(f"SELECT {cols} FROM {ALIAS}.{name} t {_SELECT[name]} ORDER BY {order}").fetch_arrow_table()
            out[name] = got.cast(schemas.arrow_schema(name))
        return out
    finally:
        con.close()


def verify_dataset(folder: Path) -> dict:
    """Check a dataset folder against its manifest: every listed file present with its size and
    sha256, no table missing, row counts as written. Returns the manifest; raises :class:`DatasetError`
    naming every problem found."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f"{folder} has no {MANIFEST} (not a dataset export, or an unfinished one)") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{folder / MANIFEST} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{folder}: format {manifest.get('format')!r} v{manifest.get('format_version')}, expected {FORMAT!r} v{FORMAT_VERSION}")
    problems = []
    for rel, want in manifest["files"].items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != want["bytes"] or sha256_file(path) != want["sha256"]:
            problems.append(f"{rel}: checksum mismatch (the file was changed or damaged)")
    for name in TABLES:
        entry = manifest["tables"].get(name)
        if entry is None or entry["file"] not in manifest["files"]:
            problems.append(f"table {name}: not in the manifest")
        elif (folder / entry["file"]).is_file() and pq.ParquetFile(folder / entry["file"]).metadata.num_rows != entry["rows"]:
            problems.append(f"table {name}: row count differs from the manifest's {entry['rows']}")
    if problems:
        raise DatasetError(f"{folder} fails verification:\n  " + "\n  ".join(problems))
    return manifest


def import_dataset(folder: Path, settings: Settings, *, replace: bool = False) -> ImportSummary:
    """Verify ``folder`` and write its rows into the lakehouse of ``settings``, one transaction per
    video (the same path a harvest writes through). A dataset of an older schema version is brought
    up to date with the lakehouse's migrations first. Refuses (:class:`DatasetError`) a dataset of a
    newer schema version, and videos already in the lakehouse unless ``replace`` (their rows are
    then replaced by the dataset's, which may hold fewer tracks than the stored video)."""
    folder = Path(folder)
    manifest = verify_dataset(folder)
    version = int(manifest["schema_version"])
    if version > schemas.SCHEMA_VERSION:
        raise DatasetError(f"the dataset has schema version {version}, newer than this hmmr's {schemas.SCHEMA_VERSION}: upgrade hmmr")
    tables = {name: pq.read_table(folder / manifest["tables"][name]["file"]) for name in TABLES}
    if version < schemas.SCHEMA_VERSION:
        tables = _upgrade(tables, version)
    for name, table in tables.items():
        if not table.schema.equals(schemas.arrow_schema(name), check_metadata=False):
            raise DatasetError(f"{name}: columns differ from warehouse.schemas:\n{table.schema}")
    with Lake(settings=settings) as lake:
        video_ids = tables["videos"].column("video_id").to_pylist()
        present = lake.done_video_ids() & set(video_ids)
        if present and not replace:
            raise DatasetError(f"{len(present)} videos are already in {settings.home} (e.g. {sorted(present)[0]}); "
                               "pass --replace to replace their rows with the dataset's")
        slices = {name: _video_slices(t) for name, t in tables.items() if name != "videos"}
        for row in tables["videos"].to_pylist():
            vid = row["video_id"]
            parts = {name: tables[name].slice(*s[vid]) if vid in s else tables[name].slice(0, 0) for name, s in slices.items()}
            lake.write_video(row, parts)
    return ImportSummary(snapshot_id=manifest["snapshot_id"], rows={n: t.num_rows for n, t in tables.items()},
                         videos=len(video_ids), replaced=len(present))


def _upgrade(tables: dict[str, pa.Table], version: int) -> dict[str, pa.Table]:
    """Tables of a dataset written with schema ``version``, brought to the current schema by the
    lakehouse's own migration steps (:mod:`warehouse.migrations`), run on an in-memory DuckDB copy."""
    try:
        steps = migrations.pending(version)
    except ValueError as exc:
        raise DatasetError(f"the dataset has schema version {version}: {exc}") from exc
    con = duckdb.connect()
    try:
        for name, table in tables.items():
            con.register("_in", table)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _in")
            con.unregister("_in")
        for step in steps:
            for sql in step.statements:
                con.execute(sql.format(db="memory"))
        out = {}
        for name in tables:
            cols = ", ".join(schemas.column_names(name))
            order = ", ".join(schemas.SORT_KEYS[name])
            out[name] = con.execute(f"SELECT {cols} FROM {name} ORDER BY {order}").fetch_arrow_table().cast(schemas.arrow_schema(name))
        return out
    finally:
        con.close()


def _video_slices(table: pa.Table) -> dict[str, tuple[int, int]]:
    """``video_id -> (offset, length)`` of a table sorted by video_id."""
    ids = np.asarray(table.column("video_id").to_pylist(), dtype=object)
    if len(ids) == 0:
        return {}
    starts = np.concatenate([[0], np.flatnonzero(ids[1:] != ids[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(ids)]])
    return {ids[a]: (int(a), int(b - a)) for a, b in zip(starts, ends)}
