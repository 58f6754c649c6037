"""Training windows: every run of T consecutive frames inside a kept track, as SQL.

One row per window:

| column | unit | meaning |
|---|---|---|
| video_id | | the video |
| track_id | | the kept curated segment (``tracks.kept``) |
| start_frame | frame index | first frame of the window |
| end_frame | frame index | last frame of the window (inclusive, like ``tracks.end_frame``) |
| T | frames | window length |
| visible_fraction | 0-1 | visible keypoints (confidence >= 0.1 in ``detections``) / (25 T); frames of the track without a detection (interpolated) count as 0 visible |
| tags | | the video's tags (JSON object, ``videos.tags``) |

A kept track of n frames has n - T + 1 windows (none when n < T). A track's detections are the rows of
``detections`` with its ``track_id`` (schema v2: filled from its ``raw_track_id`` inside its frame range).

For the paper's T = 20 the windows are materialised when a video is written: :class:`warehouse.lake.Lake`
derives the ``track_windows`` rows of each write from the same write's tracks, track frames and
detections with :func:`window_rows_sql` (schema v3), and the catalog view ``training_windows`` reads
them (:func:`view_sql`), so sampling 10,000 windows out of millions is a scan of one small table instead
of a window function over every frame (benchmarks/lakehouse.py). For another T, :func:`windows_sql`
computes the same rows from the frames (DuckDB views take no parameters).
"""

from __future__ import annotations

from pose_harvest.curate import CurationConfig
from pose_harvest.keypoints import HMMR25

DEFAULT_T = 20
VISIBLE_CONF = CurationConfig().min_conf  # the HMMR visibility threshold (0.1)
COLUMNS = ("video_id", "track_id", "start_frame", "end_frame", "T", "visible_fraction", "tags")


def window_rows_sql(T: int = DEFAULT_T, db: str = "lake") -> str:
    """SQL (one SELECT) of the windows of ``T`` frames over the tables of ``db``, without tags: the
    columns of ``track_windows`` (``video_id, track_id, start_frame, end_frame, T, visible_fraction``)."""
    if int(T) != T or T < 1:
        raise ValueError(f"window length T must be a positive integer, got {T!r}")
    T = int(T)
    return (
        "WITH frames AS ("
        " SELECT tf.video_id, tf.track_id, tf.frame, t.end_frame AS track_end,"
        # interpolated frames count 0 here, not in the join's ON: a condition on the outer side alone
        # turns DuckDB's hash join into a nested loop (measured: 7.9 s instead of 0.29 s on 100 videos)
        f" CASE WHEN tf.interpolated THEN 0 ELSE coalesce(len(list_filter(d.kp_conf, lambda c: c >= {VISIBLE_CONF})), 0) END AS n_vis"
        f" FROM {db}.tracks t"
        f" JOIN {db}.track_frames tf ON tf.video_id = t.video_id AND tf.track_id = t.track_id"
        f" LEFT JOIN {db}.detections d ON d.video_id = tf.video_id AND d.track_id = tf.track_id"
        " AND d.frame = tf.frame"
        " WHERE t.kept),"
        " win AS ("
        " SELECT video_id, track_id, frame AS start_frame, track_end,"
        " sum(n_vis) OVER (PARTITION BY video_id, track_id ORDER BY frame"
        f" ROWS BETWEEN CURRENT ROW AND {T - 1} FOLLOWING) AS n_vis_sum"
        " FROM frames)"
        f" SELECT w.video_id, w.track_id, w.start_frame, w.start_frame + {T - 1} AS end_frame, {T} AS T,"
        f" CAST(w.n_vis_sum AS DOUBLE) / {len(HMMR25) * T} AS visible_fraction"
        f" FROM win w WHERE w.start_frame + {T - 1} <= w.track_end"
    )


def windows_sql(T: int = DEFAULT_T, db: str = "lake") -> str:
    """SQL (one SELECT) of all windows of ``T`` frames over the lakehouse attached as ``db``, computed
    from the frames (:data:`COLUMNS`)."""
    return f"SELECT w.*, v.tags FROM ({window_rows_sql(T, db)}) w JOIN {db}.videos v USING (video_id)"


def view_sql(db: str = "lake") -> str:
    """The ``training_windows`` view: the materialised T = 20 windows (``track_windows``) with their
    video's tags; the same rows as ``windows_sql(20)``."""
    return (f"SELECT w.video_id, w.track_id, w.start_frame, w.end_frame, w.T, w.visible_fraction, v.tags"
            f" FROM {db}.track_windows w JOIN {db}.videos v USING (video_id)")
