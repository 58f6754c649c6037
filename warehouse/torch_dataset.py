"""``WindowDataset``: a torch Dataset over a SQL query on ``training_windows``.

The query runs once, read-only (:func:`warehouse.catalog.read_only_query`), pinned to the snapshot
current at construction (``dataset.snapshot``: the exact data a training run saw). Each item reads
its track's frames from the lakehouse through a DuckDB connection the process opens on first use
(a DataLoader worker opens its own; nothing unpicklable is kept across pickling or fork), and with
``frames=True`` decodes the window's frames from ``videos.raw_path`` and crops them the HMMR way
(:mod:`warehouse.crops`).

An item is a dict:

| key | shape | meaning |
|---|---|---|
| kps | (T, 25, 3) float32 | HMMR-25 keypoints x, y + confidence; video pixels (``coords="video"``) or the 224 crop normalised to [-1, 1] (``coords="crop"``); (0, 0, 0) when missing |
| boxes | (T, 4) float32 | detection box x0, y0, x1, y1 in the same coordinates; 0 where the frame has no detection |
| has_detection | (T,) bool | False for frames the curation interpolated |
| affine | (T, 2, 3) float32 | video pixels -> 224-crop pixels, augmentation included |
| frames | (T,) int64 | frame indices |
| images | (T, 3, 224, 224) float32 | RGB crops in [0, 1] (only with ``frames=True``) |
| joints_3d | (T, 14, 3) float32 | 3D ground truth (``track_frames_3d``): LSP-14 joints, metres, camera frame; zeros without |
| pose, shape | (T, 72), (10,) float32 | SMPL pose (global rotation in the camera frame) and shape of that ground truth; zeros without |
| has_3d, has_smpl | () bool | the window has that ground truth on every frame |
| video_id, track_id, start_frame | | the window |

A mirrored window (augmentation) mirrors its 3D too: LSP joints swap sides and x is negated, the pose
is reflected (:func:`warehouse.crops.flip_joints_3d`, :func:`~warehouse.crops.flip_pose`).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from hmmr.config import Settings
from warehouse import lake
from warehouse.catalog import read_only_query
from warehouse.crops import (Augment, Jitter, crop_images, crop_matrices, flip_joints_3d, flip_pose, transform_boxes,
                             transform_keypoints)
from warehouse.frame_window import VideoIndex, read_frames
from warehouse.windows import DEFAULT_T, windows_sql

_TRACK_SQL = f"""
WITH tf AS (SELECT frame, center_x, center_y, scale, interpolated FROM {lake.ALIAS}.track_frames
            WHERE video_id = $video_id AND track_id = $track_id),
     d AS (SELECT frame, x0, y0, x1, y1, kp_x, kp_y, kp_conf FROM {lake.ALIAS}.detections
           WHERE video_id = $video_id AND track_id = $track_id)
SELECT tf.frame, tf.center_x, tf.center_y, tf.scale, d.frame IS NOT NULL AND NOT tf.interpolated AS has_detection,
       d.x0, d.y0, d.x1, d.y1, d.kp_x, d.kp_y, d.kp_conf
FROM tf LEFT JOIN d USING (frame)
ORDER BY tf.frame
"""
_VIDEO_SQL = f"SELECT raw_path, fps FROM {lake.ALIAS}.videos WHERE video_id = ?"
_TRACK_3D_SQL = f"""SELECT frame, joints_3d, pose, shape FROM {lake.ALIAS}.track_frames_3d
WHERE video_id = $video_id AND track_id = $track_id ORDER BY frame"""
_TRACKS_3D_SQL = "SELECT video_id, track_id, min(frame) AS first, max(frame) AS last, count(*) AS n FROM track_frames_3d GROUP BY ALL"


@dataclass(frozen=True)
class _Track:
    """One track's rows: frames (N,), center (N, 2) px, scale (N,), has_det (N,), boxes (N, 4) px,
    kps (N, 25, 3) px + confidence."""

    frames: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    has_det: np.ndarray
    boxes: np.ndarray
    kps: np.ndarray
    has_3d: np.ndarray | None = None  #: (N,) frames with 3D ground truth, and then:
    joints_3d: np.ndarray | None = None  #: (N, 14, 3) metres, camera frame
    pose: np.ndarray | None = None  #: (N, 72)
    shape: np.ndarray | None = None  #: (10,)


class WindowDataset(Dataset):
    """Windows of ``T`` frames chosen by ``query`` (SQL over ``training_windows``; it must return
    ``video_id, track_id, start_frame, end_frame``).

    ``training_windows`` in the query means windows of ``T`` frames (the catalog view is T = 20; for
    other T the same SQL comes from :func:`warehouse.windows.windows_sql`). ``augment`` (only with
    ``coords="crop"``) draws one :class:`~warehouse.crops.Jitter` per item from
    ``(seed, epoch, index)``, so items are reproducible whatever the worker; call :meth:`set_epoch`
    for new draws each epoch. ``track_cache``: tracks kept in memory per process. ``has_3d`` ``(N,)``:
    the windows whose track has 3D ground truth over the whole window.
    """

    def __init__(self, settings: Settings, query: str = "SELECT * FROM training_windows", *, T: int = DEFAULT_T,
                 frames: bool = False, coords: Literal["video", "crop"] = "video", augment: Augment | None = None,
                 seed: int = 0, at_version: int | None = None, track_cache: int = 64):
        if coords not in ("video", "crop"):
            raise ValueError(f"coords must be 'video' or 'crop', got {coords!r}")
        if augment is not None and coords != "crop":
            raise ValueError("augmentation moves the crop: use coords='crop' with augment")
        self.settings, self.T, self.frames, self.coords = settings, int(T), frames, coords
        self.augment, self.seed, self.epoch, self.track_cache = augment, seed, 0, track_cache
        self.snapshot = lake.current_snapshot(settings) if at_version is None else int(at_version)
        # T = 20 reads the catalog view (materialised windows); another T computes them from the frames
        sql = query if self.T == DEFAULT_T else f"WITH training_windows AS ({windows_sql(self.T, db=lake.ALIAS)}) SELECT * FROM ({query})"
        table = read_only_query(settings, sql, at_version=self.snapshot)
        missing = {"video_id", "track_id", "start_frame", "end_frame"} - set(table.column_names)
        if missing:
            raise ValueError(f"the query must return video_id, track_id, start_frame, end_frame; missing {sorted(missing)}")
        # a query's row order is not stable across runs (parallel scans); the dataset's index must be
        table = table.sort_by([("video_id", "ascending"), ("track_id", "ascending"), ("start_frame", "ascending")])
        videos = table.column("video_id").combine_chunks().dictionary_encode()  # no per-window Python objects
        self._video_names = videos.dictionary.to_pylist()  # (fork workers copy-on-write no refcounts)
        self._video_codes = videos.indices.to_numpy().astype(np.int32)
        self.track_ids = table.column("track_id").to_numpy().astype(np.int64)
        self.starts = table.column("start_frame").to_numpy().astype(np.int64)
        lengths = table.column("end_frame").to_numpy() - self.starts + 1
        if len(lengths) and (lengths != self.T).any():
            raise ValueError(f"the query returned windows of {sorted(set(lengths.tolist()))} frames, not T = {self.T}")
        self._tracks_3d = self._ground_truth_tracks()
        self.has_3d = np.array([self._covers(self.window(i)) for i in range(len(self))], bool)
        self._reset()

    def _ground_truth_tracks(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(video_id, track_id) -> (first, last) frame of the tracks whose 3D rows are contiguous."""
        try:
            rows = read_only_query(self.settings, _TRACKS_3D_SQL, at_version=self.snapshot).to_pylist()
        except duckdb.CatalogException:  # a lakehouse written before the table existed
            return {}
        return {(r["video_id"], r["track_id"]): (r["first"], r["last"]) for r in rows if r["last"] - r["first"] + 1 == r["n"]}

    def _covers(self, window: tuple[str, int, int]) -> bool:
        """Whether the 3D ground truth of the window's track spans all its T frames."""
        video_id, track_id, start = window
        span = self._tracks_3d.get((video_id, track_id))
        return span is not None and span[0] <= start and start + self.T - 1 <= span[1]

    def _reset(self) -> None:
        self._con, self._pid = None, None
        self._tracks: OrderedDict[tuple[str, int], _Track] = OrderedDict()
        self._videos: dict[str, tuple[VideoIndex, float]] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("_con", "_pid", "_tracks", "_videos"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset()

    def __len__(self) -> int:
        return len(self.starts)

    def window(self, index: int) -> tuple[str, int, int]:
        """``(video_id, track_id, start_frame)`` of item ``index``."""
        return self._video_names[self._video_codes[index]], int(self.track_ids[index]), int(self.starts[index])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _connection(self):
        if self._con is None or self._pid != os.getpid():  # first use, or a forked worker
            self._reset()
            self._con = lake.connect()
            lake.attach(self._con, self.settings, read_only=True, snapshot=self.snapshot)
            self._pid = os.getpid()
        return self._con

    def _track(self, video_id: str, track_id: int) -> _Track:
        key = (video_id, track_id)
        if key in self._tracks:
            self._tracks.move_to_end(key)
            return self._tracks[key]
        t = self._connection().execute(_TRACK_SQL, {"video_id": video_id, "track_id": track_id}).fetch_arrow_table()
        has = t.column("has_detection").to_numpy(zero_copy_only=False)
        present = t.filter(t.column("has_detection"))
        kps = np.zeros((len(has), 25, 3), np.float32)
        for i, name in enumerate(("kp_x", "kp_y", "kp_conf")):
            kps[has, :, i] = present.column(name).combine_chunks().flatten().to_numpy().reshape(-1, 25)
        boxes = np.zeros((len(has), 4), np.float32)
        boxes[has] = np.stack([present.column(c).to_numpy() for c in ("x0", "y0", "x1", "y1")], 1)
        frames = t.column("frame").to_numpy().astype(np.int64)
        track = _Track(frames=frames, center=np.stack([t.column("center_x").to_numpy(), t.column("center_y").to_numpy()], 1),
                       scale=t.column("scale").to_numpy(), has_det=has, boxes=boxes, kps=kps,
                       **(self._track_3d(video_id, track_id, frames) if key in self._tracks_3d else {}))
        self._tracks[key] = track
        if len(self._tracks) > self.track_cache:
            self._tracks.popitem(last=False)
        return track

    def _track_3d(self, video_id: str, track_id: int, frames: np.ndarray) -> dict:
        t = self._connection().execute(_TRACK_3D_SQL, {"video_id": video_id, "track_id": track_id}).fetch_arrow_table()
        at = np.searchsorted(frames, t.column("frame").to_numpy())
        n = len(frames)
        has, joints, pose = np.zeros(n, bool), np.zeros((n, 14, 3), np.float32), np.zeros((n, 72), np.float32)
        has[at] = True
        joints[at] = t.column("joints_3d").combine_chunks().flatten().to_numpy().reshape(-1, 14, 3)
        pose[at] = t.column("pose").combine_chunks().flatten().to_numpy().reshape(-1, 72)
        shape = t.column("shape").combine_chunks().flatten().to_numpy().reshape(-1, 10)[0] if len(t) else np.zeros(10, np.float32)
        return {"has_3d": has, "joints_3d": joints, "pose": pose, "shape": shape.astype(np.float32)}

    def _video(self, video_id: str) -> tuple[VideoIndex, float]:
        if video_id not in self._videos:
            raw_path, fps = self._connection().execute(_VIDEO_SQL, [video_id]).fetchone()
            if not raw_path or not os.path.exists(raw_path):
                raise FileNotFoundError(f"{video_id}: raw video {raw_path!r} is not on this machine (frames=True needs it)")
            self._videos[video_id] = (VideoIndex.of(raw_path), fps)
        return self._videos[video_id]

    def jitter(self, index: int) -> Jitter:
        """The augmentation of item ``index`` in the current epoch (``Jitter()`` without augment)."""
        if self.augment is None:
            return Jitter()
        return self.augment.draw(np.random.default_rng([self.seed, self.epoch, index]))

    def _ground_truth(self, track: _Track, sl: slice, *, flip: bool) -> dict:
        """The 3D keys of an item (zeros and False unless every frame of the window has ground truth)."""
        if track.has_3d is None or not track.has_3d[sl].all():
            return _no_ground_truth(self.T)
        joints, pose = track.joints_3d[sl], track.pose[sl]
        if flip:
            joints, pose = flip_joints_3d(joints), flip_pose(pose)
        return {"joints_3d": joints, "pose": pose, "shape": track.shape, "has_3d": True, "has_smpl": True}

    def __getitem__(self, index: int) -> dict:
        video_id, track_id, start = self.window(index)
        track = self._track(video_id, track_id)
        i = int(np.searchsorted(track.frames, start))
        sl = slice(i, i + self.T)
        if not np.array_equal(track.frames[sl], np.arange(start, start + self.T)):
            raise ValueError(f"{video_id} track {track_id} has no frames {start}..{start + self.T - 1}")
        jit = self.jitter(index)
        m = crop_matrices(track.center[sl], track.scale[sl], jit)
        crop = self.coords == "crop"
        item = {
            "kps": transform_keypoints(track.kps[sl], m, flip=jit.flip, normalise=True) if crop else track.kps[sl],
            "boxes": transform_boxes(track.boxes[sl], m, normalise=True) if crop else track.boxes[sl],
            "has_detection": track.has_det[sl],
            "affine": m.astype(np.float32),
            "frames": track.frames[sl],
            **self._ground_truth(track, sl, flip=crop and jit.flip),
        }
        item = {k: torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else torch.tensor(v) for k, v in item.items()}
        if self.frames:
            video, fps = self._video(video_id)
            rgb = crop_images(read_frames(video, start, self.T, fps=fps), m)
            item["images"] = torch.from_numpy(rgb).permute(0, 3, 1, 2).float().div_(255)
        item.update(video_id=video_id, track_id=track_id, start_frame=start)
        return item


def _no_ground_truth(T: int) -> dict:
    return {"joints_3d": np.zeros((T, 14, 3), np.float32), "pose": np.zeros((T, 72), np.float32),
            "shape": np.zeros(10, np.float32), "has_3d": False, "has_smpl": False}


def window_loader(dataset: WindowDataset, *, batch_size: int = 8, shuffle: bool = True, num_workers: int = 2,
                  seed: int = 0, multiprocessing_context: str = "forkserver") -> DataLoader:
    """A DataLoader over ``dataset`` whose workers each open their own lakehouse connection; the
    shuffle order comes from ``seed``. Batch 8 windows is the paper's.

    Workers start from a forkserver by default, not by forking this process: a process that has run a
    Prefect flow or holds DuckDB threads does not fork safely (a forked worker of a process that had run
    a flow under a Prefect server exited with code 1 at shutdown here). The Dataset is pickled to them.
    """
    if num_workers and multiprocessing_context == "forkserver":
        multiprocessing.get_context("forkserver").set_forkserver_preload(["warehouse.torch_dataset"])
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      generator=torch.Generator().manual_seed(seed),
                      multiprocessing_context=multiprocessing_context if num_workers else None)


def whole_track(settings: Settings, video_id: str, track_id: int, n_frames: int, *, frames: bool = False,
                coords: Literal["video", "crop"] = "crop", at_version: int | None = None) -> dict:
    """One kept track of ``n_frames`` frames as a single :class:`WindowDataset` item (no augmentation):
    with ``coords="crop"`` keypoints in its HMMR crops, the crop ``affine`` of every frame, and with
    ``frames=True`` the crops themselves; with ``coords="video"`` keypoints in video pixels."""
    quoted = video_id.replace("'", "''")
    query = f"SELECT * FROM training_windows WHERE video_id = '{quoted}' AND track_id = {int(track_id)}"
    return WindowDataset(settings, query, T=n_frames, frames=frames, coords=coords, at_version=at_version)[0]
