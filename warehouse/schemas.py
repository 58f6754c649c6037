"""Every warehouse table's columns, defined once: name, DuckDB type, Arrow type, unit, meaning.

DuckLake refuses fixed-size arrays, so the 25 keypoints are variable lists (``FLOAT[]``) whose length
is checked here when rows are built.

``SCHEMA_VERSION`` is the version these definitions describe. A change to them bumps it and adds a
step to :data:`warehouse.migrations.MIGRATIONS` that brings an existing lakehouse from the previous
version to this one with DuckLake's ``ALTER TABLE``; a column added that way goes at the end of its
table (where ``ADD COLUMN`` puts it), so a migrated lakehouse and a new one have the same columns in
the same order. ``docs/data_dictionary.md`` is generated from this module (``hmmr warehouse dictionary``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from warehouse.windows import DEFAULT_T, view_sql

SCHEMA_VERSION = 3


@dataclass(frozen=True)
class Column:
    name: str
    sql: str
    unit: str
    description: str
    list_len: int | None = None  # exact length of a list column
    nullable: bool = False  # a list_len column whose rows may be NULL (None)

    @property
    def arrow(self) -> pa.DataType:
        return _ARROW[self.sql]


_ARROW = {
    "VARCHAR": pa.string(), "INTEGER": pa.int32(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
    "FLOAT": pa.float32(), "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us"), "FLOAT[]": pa.list_(pa.float32()),
}

_VIDEO_ID = Column("video_id", "VARCHAR", "", "stable id: '<extractor>:<id>', or 'url:<sha256 of URL>[:16]'")
_FRAME = Column("frame", "INTEGER", "frame index", "0-based index at the decoded frame rate")
_KP = "25 values, HMMR-25 keypoint order (pose_harvest.keypoints.HMMR25)"
_SEQUENCE_ID = Column("sequence_id", "VARCHAR", "", "'<source>:<id>': 'cmu:02_01', '3dpw:<sequence>:<person>', 'h36m:<subject>:<action>'")

TABLES: dict[str, tuple[Column, ...]] = {
    "videos": (
        _VIDEO_ID,
        Column("source", "VARCHAR", "", "the source as written in the sources file (tags removed)"),
        Column("url", "VARCHAR", "", "URL handed to yt-dlp (file:// for local files)"),
        Column("extractor", "VARCHAR", "", "yt-dlp extractor that handled the URL"),
        Column("tags", "VARCHAR", "", "JSON object of user tags, e.g. {\"hashtag\": \"dance\"}"),
        Column("status", "VARCHAR", "", "ok | no_people | bad_source | duplicate | download_failed | invalid_video | detector_failed | failed"),
        Column("error", "VARCHAR", "", "human-readable reason when status is not ok"),
        Column("raw_path", "VARCHAR", "", "downloaded file in the content-addressed raw store"),
        Column("sha256", "VARCHAR", "", "SHA-256 of the downloaded file"),
        Column("size_bytes", "BIGINT", "bytes", "file size"),
        Column("codec", "VARCHAR", "", "video codec (ffprobe)"),
        Column("width", "INTEGER", "pixels", "frame width after rotation"),
        Column("height", "INTEGER", "pixels", "frame height after rotation"),
        Column("fps", "DOUBLE", "frames/s", "decoded frame rate (the video's own, or the --fps asked for)"),
        Column("n_frames", "INTEGER", "frames", "frames decoded (ffprobe's packet count until decoding)"),
        Column("duration_s", "DOUBLE", "seconds", "duration (ffprobe)"),
        Column("n_shots", "INTEGER", "", "shots between scene cuts"),
        Column("n_detections", "INTEGER", "", "people found, summed over frames"),
        Column("n_tracks", "INTEGER", "", "curated track segments, kept or not"),
        Column("n_tracks_kept", "INTEGER", "", "curated track segments kept"),
        Column("max_people", "INTEGER", "", "most people found in one frame"),
        Column("detector", "VARCHAR", "", "2D pose backend"),
        Column("harvested_at", "TIMESTAMP", "UTC", "when the row was written"),
        Column("run_id", "VARCHAR", "", "harvest run that wrote the row"),
        Column("schema_version", "INTEGER", "", "schema version hmmr wrote the row with (a migration leaves it as it was)"),
    ),
    "shots": (
        _VIDEO_ID,
        Column("shot_id", "INTEGER", "", "0-based shot number in the video"),
        Column("start_frame", "INTEGER", "frame index", "first frame of the shot"),
        Column("end_frame", "INTEGER", "frame index", "one past the last frame (exclusive)"),
        Column("start_s", "DOUBLE", "seconds", "start time"),
        Column("end_s", "DOUBLE", "seconds", "end time (exclusive)"),
    ),
    "detections": (
        _VIDEO_ID,
        _FRAME,
        Column("time_s", "DOUBLE", "seconds", "frame / fps"),
        Column("shot_id", "INTEGER", "", "shot the frame belongs to"),
        Column("det_idx", "INTEGER", "", "index of the person within the frame"),
        Column("raw_track_id", "INTEGER", "", "tracker id (before curation), unique within the video"),
        Column("x0", "FLOAT", "pixels", "box left"),
        Column("y0", "FLOAT", "pixels", "box top"),
        Column("x1", "FLOAT", "pixels", "box right"),
        Column("y1", "FLOAT", "pixels", "box bottom"),
        Column("score", "FLOAT", "0-1", "detection confidence"),
        Column("kp_x", "FLOAT[]", "pixels", f"keypoint x, {_KP}; 0 when missing", 25),
        Column("kp_y", "FLOAT[]", "pixels", f"keypoint y, {_KP}; 0 when missing", 25),
        Column("kp_conf", "FLOAT[]", "0-1", f"keypoint confidence, {_KP}; visible when >= 0.1", 25),
        Column("track_id", "INTEGER", "", "curated segment (tracks.track_id) the detection belongs to; NULL when in none (since v2)"),
    ),
    "tracks": (
        _VIDEO_ID,
        Column("track_id", "INTEGER", "", "curated segment id, unique within the video"),
        Column("raw_track_id", "INTEGER", "", "tracker id the segment was cut from"),
        Column("shot_id", "INTEGER", "", "shot of the segment"),
        Column("start_frame", "INTEGER", "frame index", "first frame"),
        Column("end_frame", "INTEGER", "frame index", "last frame (inclusive)"),
        Column("n_frames", "INTEGER", "frames", "end_frame - start_frame + 1"),
        Column("kept", "BOOLEAN", "", "passes every HMMR cleaning rule"),
        Column("drop_reason", "VARCHAR", "", "too_short | face_only | few_visible, NULL when kept"),
        Column("mean_visible", "FLOAT", "keypoints", "mean visible keypoints per frame"),
    ),
    "track_frames": (
        _VIDEO_ID,
        Column("track_id", "INTEGER", "", "curated segment id"),
        _FRAME,
        Column("center_x", "FLOAT", "pixels", "smoothed box centre x"),
        Column("center_y", "FLOAT", "pixels", "smoothed box centre y"),
        Column("scale", "FLOAT", "1/pixels x 150", "smoothed 150 / person height: resize factor to a 150 px person"),
        Column("n_visible", "INTEGER", "keypoints", "visible keypoints in this frame (0 when interpolated)"),
        Column("interpolated", "BOOLEAN", "", "no detection in this frame: box interpolated"),
    ),
    "track_windows": (
        _VIDEO_ID,
        Column("track_id", "INTEGER", "", "kept curated segment id"),
        Column("start_frame", "INTEGER", "frame index", "first frame of the window"),
        Column("end_frame", "INTEGER", "frame index", "last frame of the window (inclusive)"),
        Column("T", "INTEGER", "frames", f"window length ({DEFAULT_T})"),
        Column("visible_fraction", "DOUBLE", "0-1", "visible keypoints (confidence >= 0.1) / (25 T); interpolated frames count as 0 visible"),
    ),
    "evaluations": (
        Column("evaluation_id", "VARCHAR", "", "one evaluation: '<checkpoint sha256>[:12]-<query sha256>[:12]-s<data_snapshot>' (re-running it replaces its rows)"),
        Column("checkpoint", "VARCHAR", "", "path of the evaluated checkpoint"),
        Column("checkpoint_sha256", "VARCHAR", "", "SHA-256 of the checkpoint file"),
        Column("step", "INTEGER", "steps", "training step of the checkpoint"),
        Column("model", "VARCHAR", "", "temporal | single-frame (the model without f_movie)"),
        Column("query", "VARCHAR", "", "SQL over curated_tracks that chose the evaluated tracks"),
        Column("data_snapshot", "BIGINT", "", "DuckLake snapshot the tracks were read at"),
        Column("n_tracks", "INTEGER", "tracks", "tracks evaluated"),
        Column("n_frames", "INTEGER", "frames", "frames evaluated, over all tracks"),
        Column("metric", "VARCHAR", "", "pck | accel | mpjpe | pa_mpjpe | accel_error, suffixed _dt{+-k} (dynamics head) "
               "or _const{+-k} (constant baseline)"),
        Column("value", "DOUBLE", "metric's unit", "mean over tracks of the per-track mean (the authors' aggregate)"),
        Column("unit", "VARCHAR", "", "0-1 (pck), mm (mpjpe, pa_mpjpe), mm/frame^2 (accel, accel_error)"),
        Column("evaluated_at", "TIMESTAMP", "UTC", "when the row was written"),
    ),
    "mocap_sequences": (
        _SEQUENCE_ID,
        Column("source", "VARCHAR", "", "cmu (or bvh: another BVH file) | 3dpw | h36m"),
        Column("subject", "VARCHAR", "", "person recorded: CMU subject ('02' of 02_01.bvh), Human3.6M subject ('S9'); "
               "NULL for 3DPW, whose files do not name their actors"),
        Column("trial", "VARCHAR", "", "CMU trial ('01' of 02_01.bvh), Human3.6M action ('Walking 1'), 3DPW sequence name"),
        Column("person", "INTEGER", "", "index of the person in a multi-person 3DPW sequence file; 0 elsewhere"),
        Column("path", "VARCHAR", "", "file the motion was read from (the joint positions file when there are two)"),
        Column("sha256", "VARCHAR", "", "SHA-256 of that file"),
        Column("source_fps", "DOUBLE", "frames/s", "frame rate of the file"),
        Column("source_frames", "INTEGER", "frames", "frames in the file (a CMU T-pose frame included)"),
        Column("fps", "DOUBLE", "frames/s", "frame rate of the stored frames (mocap_frames); 30 unless asked otherwise"),
        Column("n_frames", "INTEGER", "frames", "frames stored in mocap_frames"),
        Column("skeleton", "VARCHAR", "", "joint set of mocap_frames.joints: cmu (31 CMU joints) | bvh (another BVH skeleton) "
               "| smpl24 (SMPL's 24 joints) | h36m32 (Human3.6M's 32 joints); NULL when there are no joints (a MoSh fit alone)"),
        Column("joint_names", "VARCHAR", "", "JSON list of the J joint names, in mocap_frames.joints order ([] without joints)"),
        Column("joint_parents", "VARCHAR", "", "JSON list of the J parent indices (-1 for the root); NULL when the source has no tree"),
        Column("gender", "VARCHAR", "", "SMPL body model gender of pose/shape: male | female | neutral; NULL without SMPL parameters"),
        Column("camera_intrinsics", "VARCHAR", "", "JSON 3 x 3 K (pixels) of the 3DPW camera; NULL elsewhere"),
        Column("split", "VARCHAR", "", "train | test (held out by subject; 3DPW's own train | validation | test)"),
        Column("notes", "VARCHAR", "", "what the importer changed, e.g. 'dropped T-pose frame 1', 'resampled 120 -> 30 fps'"),
        Column("imported_at", "TIMESTAMP", "UTC", "when the row was written"),
    ),
    "mocap_frames": (
        _SEQUENCE_ID,
        Column("frame", "INTEGER", "frame index", "0-based index at mocap_sequences.fps (3DPW: the image index)"),
        Column("time_s", "DOUBLE", "seconds", "frame / fps, from the first stored frame"),
        Column("joints", "FLOAT[]", "metres", "J x 3 values (x, y, z of each joint, mocap_sequences.joint_names order), world "
               "frame: y-up for BVH and Human3.6M (turned from its z-up), 3DPW's world as its file gives it; "
               "NULL for a Human3.6M MoSh file without joint positions"),
        Column("pose", "FLOAT[]", "radians", "72 values: SMPL axis-angle rotations of the 24 joints, global orientation first; "
               "NULL when the source has no SMPL parameters (CMU)", 72, True),
        Column("shape", "FLOAT[]", "", "10 SMPL shape coefficients (betas); NULL without SMPL parameters", 10, True),
        Column("trans", "FLOAT[]", "metres", "3 values: SMPL root translation; NULL without SMPL parameters", 3, True),
        Column("cam_pose", "FLOAT[]", "metres", "16 values: 3DPW world-to-camera 4 x 4 matrix, row-major; NULL elsewhere", 16, True),
        Column("valid", "BOOLEAN", "", "3DPW campose_valid (the 3D pose is aligned with the image); NULL elsewhere"),
    ),
    "mocap_fits": (
        _SEQUENCE_ID,
        Column("body_model", "VARCHAR", "", "open (the anny-derived default) | smpl (the user's licensed file)"),
        Column("body_source", "VARCHAR", "", "file of the body model that was fitted"),
        Column("n_frames", "INTEGER", "frames", "frames fitted (all of mocap_frames)"),
        Column("fps", "DOUBLE", "frames/s", "frame rate of the fitted frames"),
        Column("betas", "FLOAT[]", "", "10 shape coefficients, one shape for the whole sequence", 10),
        Column("mean_error_mm", "DOUBLE", "mm", "mean over frames and corresponded joints of the distance between a mocap "
               "joint and its body joint with its placement correction (model.body.fit_joints)"),
        Column("max_error_mm", "DOUBLE", "mm", "largest such distance"),
        Column("raw_mean_error_mm", "DOUBLE", "mm", "mean distance without the placement corrections"),
        Column("joint_errors", "VARCHAR", "", "JSON {SMPL joint: mean error in mm} per corresponded joint"),
        Column("corrections", "VARCHAR", "", "JSON {SMPL joint: [x, y, z] metres}: constant placement correction of each "
               "corrected joint, in its SMPL parent's frame"),
        Column("iterations", "INTEGER", "", "optimiser iterations"),
        Column("seconds", "DOUBLE", "seconds", "wall time of the fit"),
        Column("config", "VARCHAR", "", "JSON of the fit settings (model.body.fit_joints.FitConfig)"),
        Column("fitted_at", "TIMESTAMP", "UTC", "when the row was written"),
    ),
    "mocap_fit_frames": (
        _SEQUENCE_ID,
        Column("frame", "INTEGER", "frame index", "mocap_frames.frame"),
        Column("pose", "FLOAT[]", "radians", "72 values: axis-angle rotations of the 24 SMPL joints, global orientation "
               "first, in the mocap's y-up world", 72),
        Column("trans", "FLOAT[]", "metres", "3 values: translation added to the posed body (world = body(pose, betas) + trans)", 3),
        Column("joints", "FLOAT[]", "metres", "24 x 3 values: SMPL joints of the fitted body, world frame", 72),
        Column("keypoints", "FLOAT[]", "metres", "25 x 3 values: HMMR-25 keypoints of the fitted body (the body model's "
               "regressor; LSP-14 are the first 14 with the ankles in slots 23, 24), world frame", 75),
        Column("error_mm", "FLOAT", "mm", "mean distance of this frame's corresponded joints (with placement corrections)"),
    ),
    "track_frames_3d": (
        _VIDEO_ID,
        Column("track_id", "INTEGER", "", "curated segment id (tracks.track_id)"),
        _FRAME,
        Column("joints_3d", "FLOAT[]", "metres", "14 x 3 values: LSP-14 joints (ankles in slots 0 and 5) in the camera frame "
               "(x right, y down, z forward)", 42),
        Column("pose", "FLOAT[]", "radians", "72 values: SMPL axis-angle pose, global orientation in the camera frame", 72),
        Column("shape", "FLOAT[]", "", "10 shape coefficients of the body", 10),
        Column("trans", "FLOAT[]", "metres", "3 values: camera-frame translation (camera = body(pose, shape) + trans)", 3),
        Column("sequence_id", "VARCHAR", "", "mocap sequence the 3D ground truth comes from (mocap_fits)"),
        Column("mocap_frame", "INTEGER", "frame index", "frame of that sequence"),
    ),
}

# Schema version each table appeared in: a migration to that version creates it (CREATE TABLE IF
# NOT EXISTS from the definition above); tables not listed are as old as the lakehouse (version 1).
ADDED_IN: dict[str, int] = {"evaluations": 3, "mocap_sequences": 3, "mocap_frames": 3, "track_windows": 3,
                            "mocap_fits": 3, "mocap_fit_frames": 3, "track_frames_3d": 3}

# What one row of each table is (the data dictionary's table headings).
TABLE_DOCS: dict[str, str] = {
    "videos": "One row per video, or per source line that gave no video (status says why): source, tags, status, ffprobe facts, counts.",
    "shots": "One row per shot: the frame range between two scene cuts.",
    "detections": "One row per person found in a frame: box, score and the 25 HMMR keypoints, in pixels of the decoded frame.",
    "tracks": "One row per curated track segment (kept or dropped by the HMMR cleaning rules).",
    "track_frames": "One row per frame of a curated track segment (interpolated where the person was not detected).",
    "track_windows": (f"One row per window of T = {DEFAULT_T} frames inside a kept track, derived by Lake from each write's "
                      "tracks, track_frames and detections (warehouse.windows.window_rows_sql); read through the view "
                      "training_windows (since v3)."),
    "evaluations": "One row per metric of one evaluate run (hmmr evaluate): checkpoint, data snapshot, metric, value.",
    "mocap_sequences": "One row per 3D motion sequence of one person (hmmr import bvh / 3dpw / h36m): source, subject, "
                       "frame rates, joint set, held-out split.",
    "mocap_frames": "One row per frame of a mocap sequence, resampled to mocap_sequences.fps: 3D joints in metres, and "
                    "SMPL pose/shape/translation where the source has them.",
    "mocap_fits": "One row per mocap sequence fitted with the body model (hmmr mocap fit): shape, fit errors, placement corrections.",
    "mocap_fit_frames": "One row per frame of a fitted mocap sequence: pose, translation, joints and keypoints of the fitted body.",
    "track_frames_3d": "One row per frame of a track with 3D ground truth (synthetic views of fitted mocap, hmmr mocap views): "
                       "LSP-14 joints and SMPL parameters in the camera frame.",
}

# Order rows are stored in (Lake.write_video sorts every batch this way): one video's rows, and one
# track's rows within it, sit together in a file, so DuckLake's per-file min/max statistics and
# Parquet's row-group statistics skip everything else when a query asks for one video or one track.
#
# No table is partitioned (DuckLake's ALTER TABLE ... SET PARTITIONED BY), because no key pays here:
# * by source site (videos.extractor): an InstaVariety-like harvest is nearly all YouTube, so one
#   partition would hold everything; and the queries that matter do not filter by site;
# * by video_id: one directory and one file per video, the small-file problem compaction exists to
#   undo (ducklake_merge_adjacent_files only merges files of the same partition);
# * by tag: tags are a JSON object per video, not a column of the big tables.
# What the queries select by (a video, a track, a frame range) is served by the sort order above with
# row groups of 16,384 rows (warehouse.lake.PARQUET_OPTIONS): one track's keypoints read in 41 ms
# out of 6.3 M detections (benchmarks/lakehouse.py, on a loaded 2-core machine).
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "videos": ("video_id",),
    "shots": ("video_id", "shot_id"),
    "detections": ("video_id", "track_id", "frame", "det_idx"),
    "tracks": ("video_id", "track_id"),
    "track_frames": ("video_id", "track_id", "frame"),
    "track_windows": ("video_id", "track_id", "start_frame"),
    "evaluations": ("evaluation_id", "metric"),
    "mocap_sequences": ("sequence_id",),
    "mocap_frames": ("sequence_id", "frame"),
    "mocap_fits": ("sequence_id",),
    "mocap_fit_frames": ("sequence_id", "frame"),
    "track_frames_3d": ("video_id", "track_id", "frame"),
}

# View bodies; ``{db}`` is the attached lakehouse's name.
VIEWS: dict[str, str] = {
    "curated_tracks": (
        "SELECT t.*, v.source, v.tags, v.url FROM {db}.tracks t JOIN {db}.videos v USING (video_id) WHERE t.kept"
    ),
    "training_windows": view_sql(db="{db}"),  # columns documented in warehouse.windows
}

@dataclass(frozen=True)
class ViewDoc:
    """What a view is, for the data dictionary. A view column's unit and meaning come from the first
    of ``sources`` (tables) holding a column of that name, unless ``columns`` gives them
    (name -> (unit, description))."""

    description: str
    sources: tuple[str, ...]
    columns: dict[str, tuple[str, str]]


VIEW_DOCS: dict[str, ViewDoc] = {
    "curated_tracks": ViewDoc("One row per kept track segment, with its video's source, tags and URL.", ("tracks", "videos"), {}),
    "training_windows": ViewDoc(
        f"One row per window of T = {DEFAULT_T} consecutive frames inside a kept track (a track of n frames has "
        "n - T + 1), with its video's tags: the table track_windows joined with videos; "
        "warehouse.windows.windows_sql(T) gives the same for another T.",
        ("track_windows", "videos"),
        {},
    ),
}

# Tables that hold per-video rows: a video's rows are replaced together (Lake.write_video).
VIDEO_TABLES = ("videos", "shots", "detections", "tracks", "track_frames", "track_windows", "track_frames_3d")
# Per-video tables Lake derives from the others of the same write (callers never pass them).
DERIVED_TABLES = ("track_windows",)


def tables_added_in(version: int) -> tuple[str, ...]:
    """The tables that schema ``version`` added (:data:`ADDED_IN`)."""
    return tuple(t for t, v in ADDED_IN.items() if v == version)


def column_names(table: str) -> list[str]:
    return [c.name for c in TABLES[table]]


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow, metadata={"unit": c.unit, "description": c.description}) for c in TABLES[table]])


def create_sql(table: str, qualified: str) -> str:
    cols = ", ".join(f"{c.name} {c.sql}" for c in TABLES[table])
    return f"CREATE TABLE IF NOT EXISTS {qualified} ({cols})"


def to_arrow(table: str, columns: dict) -> pa.Table:
    """Build a table from a dict of columns (lists or arrays), validated against the schema.

    Raises ValueError naming the column when one is missing, unknown, of another length, of a type
    that does not convert, or (for keypoint lists) not exactly 25 values per row.
    """
    names = column_names(table)
    missing, extra = set(names) - set(columns), set(columns) - set(names)
    if missing or extra:
        raise ValueError(f"{table}: missing columns {sorted(missing)}, unknown columns {sorted(extra)}")
    lengths = {len(columns[n]) for n in names}
    if len(lengths) > 1:
        raise ValueError(f"{table}: columns have different lengths {sorted(lengths)}")
    arrays = []
    for col in TABLES[table]:
        values = columns[col.name]
        if col.list_len is not None:
            arrays.append(_fixed_list(table, col, values))
            continue
        try:
            arrays.append(pa.array(values, type=col.arrow))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
            raise ValueError(f"{table}.{col.name}: cannot store as {col.sql}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=arrow_schema(table))


def _fixed_list(table: str, col: Column, values) -> pa.Array:
    if not col.nullable and not isinstance(values, np.ndarray) and any(v is None for v in values):
        raise ValueError(f"{table}.{col.name}: NULL in a column that needs {col.list_len} values per row")
    try:
        return float_lists(values, col.list_len)
    except ValueError as exc:
        raise ValueError(f"{table}.{col.name}: {exc}") from None


def float_lists(values, width: int) -> pa.Array:
    """``(N, width)`` numbers as a list<float32> array, without a per-row Python loop; items of a
    list ``values`` that are None become NULL rows. Raises ValueError unless every row has ``width``
    values."""
    mask = None
    if not isinstance(values, np.ndarray) and any(v is None for v in values):
        mask = pa.array([v is None for v in values])
        values = [np.zeros(width) if v is None else v for v in values]
    arr = np.asarray(values, dtype=np.float32) if len(values) else np.zeros((0, width), np.float32)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"expected {width} values per row, got shape {arr.shape}")
    offsets = pa.array(np.arange(0, arr.size + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(arr.reshape(-1)), mask=mask)


def row_to_arrow(table: str, row: dict) -> pa.Table:
    """A one-row table from a dict (missing columns are NULL)."""
    return to_arrow(table, {n: [row.get(n)] for n in column_names(table)})
