"""``hmmr import posetrack``: PoseTrack 2018 annotation files into the harvest tables.

A PoseTrack 2018 file (one per sequence, e.g. ``000342_mpii_test.json``) is COCO-style:

* ``images``: one per frame of the sequence, ``{"id", "frame_id", "vid_id", "file_name", "nframes",
  "is_labeled", ...}``; the frame index is ``frame_id`` minus the sequence's smallest ``frame_id``
  (ids are ``1 + vid_id`` digits ``+ 4-digit frame``, every frame is listed);
* ``annotations``: one per person per labelled frame, ``{"image_id", "track_id", "keypoints":
  [x, y, v] x 17, "bbox": [x, y, w, h], ...}``, keypoints in :data:`POSETRACK17` order, ``v`` 0/1;
* ``categories``: the person category with its 17 keypoint names (checked against the layout).

Each sequence becomes a video ``posetrack18:<vid_id>`` whose people are the annotated ``track_id``\\ s
(see :mod:`warehouse.importers.ground_truth`). Frames are image folders, not a video: with
``images_root`` (the folder ``file_name`` is relative to) the frame size is read from the first image.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from hmmr.config import Settings
from pose_harvest.keypoints import HMMR25, POSETRACK17, convert
from warehouse.importers.ground_truth import AnnotatedPerson, AnnotatedVideo, ImportedVideo, store
from warehouse.lake import Lake

DETECTOR = "posetrack2018"


class PoseTrackFormatError(ValueError):
    """The file is not PoseTrack 2018 annotation JSON; the message says what is wrong."""


def read_posetrack(path: Path, images_root: Path | None = None) -> list[AnnotatedVideo]:
    """The sequences of one PoseTrack 2018 JSON file (usually one)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoseTrackFormatError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(doc.get("annotations"), list):
        raise PoseTrackFormatError(f"{path}: expected a PoseTrack 2018 object with 'images' and 'annotations' lists "
                                   "(PoseTrack 2017's 'annolist' files are not supported)")
    for cat in doc.get("categories", []):
        names = tuple(cat.get("keypoints", ()))
        if names and names != POSETRACK17.joints:
            raise PoseTrackFormatError(f"{path}: keypoint names {names} are not PoseTrack 2018's {POSETRACK17.joints}")
    images: dict[int, dict] = {}
    for im in doc["images"]:
        try:
            images[int(im["id"])] = {"vid": str(im["vid_id"]), "frame_id": int(im["frame_id"]), "file": im.get("file_name")}
        except (KeyError, TypeError, ValueError) as exc:
            raise PoseTrackFormatError(f"{path}: an image entry lacks id/vid_id/frame_id: {im}") from exc
    by_vid: dict[str, list[dict]] = {}
    for im in images.values():
        by_vid.setdefault(im["vid"], []).append(im)
    people: dict[str, dict[int, dict[int, tuple]]] = {v: {} for v in by_vid}  # vid -> track -> frame -> (kps, box)
    first = {v: min(im["frame_id"] for im in ims) for v, ims in by_vid.items()}
    skipped = {v: [] for v in by_vid}
    for ann in doc["annotations"]:
        im = images.get(int(ann.get("image_id", -1)))
        if im is None:
            raise PoseTrackFormatError(f"{path}: annotation {ann.get('id')} names image {ann.get('image_id')}, which is not in 'images'")
        kp = np.asarray(ann.get("keypoints") or np.zeros(51), dtype=np.float32)
        if kp.size != 51:
            raise PoseTrackFormatError(f"{path}: annotation {ann.get('id')} has {kp.size} keypoint values, PoseTrack 2018 has 17 x 3")
        kp = kp.reshape(17, 3)
        kp[:, 2] = (kp[:, 2] > 0).astype(np.float32)
        kp[kp[:, 2] == 0, :2] = 0  # an unlabelled keypoint is (0, 0, 0), as everywhere in the warehouse
        box = np.asarray(ann.get("bbox") or [np.nan] * 4, dtype=np.float32)
        box = np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]], np.float32)
        frame = im["frame_id"] - first[im["vid"]]
        if "track_id" not in ann or (np.isnan(box).any() and not kp[:, 2].any()):
            skipped[im["vid"]].append(f"frame {frame}: annotation without track_id or without any box/keypoint")
            continue
        track = people[im["vid"]].setdefault(int(ann["track_id"]), {})
        if frame in track:
            skipped[im["vid"]].append(f"frame {frame}: track {ann['track_id']} annotated twice (kept the first)")
            continue
        track[frame] = (convert(kp, POSETRACK17, HMMR25), box)
    out = []
    for vid, ims in sorted(by_vid.items()):
        width = height = None
        if images_root is not None:
            first_file = min(ims, key=lambda im: im["frame_id"])["file"]
            img = cv2.imread(str(Path(images_root) / first_file)) if first_file else None
            if img is not None:
                height, width = img.shape[:2]
        persons = []
        for tid, frames in sorted(people[vid].items()):
            order = sorted(frames)
            persons.append(AnnotatedPerson(tid, np.array(order), np.stack([frames[f][0] for f in order]),
                                           np.stack([frames[f][1] for f in order])))
        note = f"{len(skipped[vid])} annotations skipped: " + "; ".join(skipped[vid][:5]) if skipped[vid] else None
        out.append(AnnotatedVideo(
            video_id=f"posetrack18:{vid}", source=str(path.resolve()), detector=DETECTOR, extractor="posetrack2018",
            tags={"import": "posetrack2018", "dataset": "posetrack2018", "vid_id": vid},
            n_frames=max(im["frame_id"] for im in ims) - first[vid] + 1,
            people=persons, width=width, height=height, error=note,
        ))
    return out


def import_posetrack(files: list[Path], settings: Settings, *, images_root: Path | None = None) -> list[ImportedVideo]:
    """Read every file first (a bad file stores nothing), then write one transaction per sequence."""
    videos = [v for f in files for v in read_posetrack(f, images_root)]
    settings.ensure_dirs()
    with Lake(settings=settings) as lake:
        return store(videos, lake)
