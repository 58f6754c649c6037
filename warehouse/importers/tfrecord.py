"""``hmmr import tfrecord``: the authors' HMMR tfrecords (InstaVariety, VLOG people, Penn Action ...),
read without TensorFlow.

Two layers, both from their public specifications:

* TFRecord framing: each record is ``uint64 length`` (little-endian), ``uint32 masked_crc32c(length
  bytes)``, ``data``, ``uint32 masked_crc32c(data)``, where ``masked(c) = ((c >> 15) | (c << 17)) +
  0xa282ead8`` (mod 2**32). Both checksums are verified; a damaged or cut file raises
  :class:`TFRecordError` with the file, record number and byte offset.
* ``tensorflow.Example`` protobuf (``Example{Features features=1}``, ``Features{map<string, Feature>
  feature=1}``, ``Feature{oneof kind: BytesList=1, FloatList=2, Int64List=3}``), decoded by the
  ``protobuf`` runtime from descriptors built here in a private pool (so it never clashes with
  another copy of these messages); packed and unpacked repeated fields both parse.

Keys, as the official code writes them (``src/datasets/common.py:convert_to_example_temporal``, read
back in ``read_from_example``): ``meta/N``; ``image/xys`` (N x 2 x 14, the first 14 HMMR joints) with
``image/visibilities`` (N x 14); ``image/face_pts`` (N x 3 x 5: nose, L eye, R eye, L ear, R ear) and
``image/toe_pts`` (N x 3 x 6: L big toe, R big toe, L small toe, R small toe, L ankle, R ankle), rows
x, y, visibility. Stacked in that order they are the 25 HMMR keypoints in HMMR order (slots 0/5
hold heels or ankles as the source dataset had them). Also ``image/heightwidths``, ``image/filenames``,
``meta/time_pts`` (test files). Not stored (no table for them yet): ``image/encoded`` JPEG crops,
``image/phis`` features, ``mosh/*``, ``image/cams``; their presence is noted in the video's tags.

Coordinates are pixels of the record's own frames, i.e. the authors' person-centred crops (300 x 300,
or 224 x 224 in feature records; ``width``/``height`` of the ``videos`` row), not of the original
video. One sequence is one video ``tfrecord:<sha256 of the record>[:16]`` with one person, track 0.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from hmmr.config import Settings
from warehouse.importers.ground_truth import AnnotatedPerson, AnnotatedVideo, ImportedVideo, store
from warehouse.lake import Lake

DETECTOR = "hmmr_tfrecord"
_MASK_DELTA = 0xA282EAD8
NOT_STORED = ("image/encoded", "image/phis", "mosh/poses", "mosh/shape", "mosh/gt3ds", "image/cams")


class TFRecordError(ValueError):
    """A file that is not valid TFRecord / tf.train.Example data (bad checksum, cut short, bad keys)."""


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(path: Path) -> Iterator[bytes]:
    """The records of a TFRecord file, each checked against both of its CRCs."""
    path = Path(path)
    with path.open("rb") as f:
        index = 0
        while header := f.read(12):
            offset = f.tell() - len(header)
            if len(header) < 12:
                raise TFRecordError(f"{path}: record {index} at byte {offset}: file ends inside the record header")
            length, length_crc = struct.unpack("<QI", header)
            if masked_crc32c(header[:8]) != length_crc:
                raise TFRecordError(f"{path}: record {index} at byte {offset}: length CRC mismatch (corrupt file, or not a TFRecord)")
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise TFRecordError(f"{path}: record {index} at byte {offset}: file ends inside the record ({len(data)} of {length} bytes)")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise TFRecordError(f"{path}: record {index} at byte {offset}: data CRC mismatch (corrupt record)")
            yield data
            index += 1


def _example_class():
    """The ``tensorflow.Example`` message class, from descriptors built in a private pool."""
    fdp = descriptor_pb2.FileDescriptorProto(name="hmmr/tf_example.proto", package="tensorflow", syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    for name, typ in (("BytesList", F.TYPE_BYTES), ("FloatList", F.TYPE_FLOAT), ("Int64List", F.TYPE_INT64)):
        fdp.message_type.add(name=name).field.add(name="value", number=1, label=rep, type=typ)
    feature = fdp.message_type.add(name="Feature")
    feature.oneof_decl.add(name="kind")
    for number, (fname, tname) in enumerate((("bytes_list", "BytesList"), ("float_list", "FloatList"), ("int64_list", "Int64List")), 1):
        feature.field.add(name=fname, number=number, label=opt, type=F.TYPE_MESSAGE, type_name=f".tensorflow.{tname}", oneof_index=0)
    features = fdp.message_type.add(name="Features")
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, label=opt, type=F.TYPE_STRING)
    entry.field.add(name="value", number=2, label=opt, type=F.TYPE_MESSAGE, type_name=".tensorflow.Feature")
    features.field.add(name="feature", number=1, label=rep, type=F.TYPE_MESSAGE, type_name=".tensorflow.Features.FeatureEntry")
    fdp.message_type.add(name="Example").field.add(name="features", number=1, label=opt, type=F.TYPE_MESSAGE,
                                                     type_name=".tensorflow.Features")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


Example = _example_class()


def parse_example(data: bytes) -> dict[str, list]:
    """``key -> values`` of one serialized ``tf.train.Example`` (bytes, float or int64 values)."""
    ex = Example()
    try:
        ex.ParseFromString(data)
    except DecodeError as exc:
        raise TFRecordError(f"not a tf.train.Example ({exc})") from exc
    out = {}
    for key, feat in ex.features.feature.items():
        kind = feat.WhichOneof("kind")
        out[key] = list(getattr(feat, kind).value) if kind else []
    return out


def example_to_video(features: dict[str, list], *, video_id: str, source: str) -> AnnotatedVideo:
    """One sequence's keypoints (see the module docstring for the keys and the joint order)."""
    def arr(key, shape, default=None):
        vals = features.get(key)
        if not vals:
            if default is None:
                raise TFRecordError(f"{source}: no {key!r} feature (not an HMMR sequence record?)")
            return np.full(shape, default, np.float32)
        a = np.asarray(vals, np.float32)
        if a.size != int(np.prod(shape)):
            raise TFRecordError(f"{source}: {key!r} has {a.size} values, expected {shape}")
        return a.reshape(shape)

    if not features.get("meta/N"):
        raise TFRecordError(f"{source}: no 'meta/N' feature (not an HMMR sequence record?)")
    n = int(features["meta/N"][0])
    xys = arr("image/xys", (n, 2, 14))
    vis = arr("image/visibilities", (n, 1, 14))
    face = arr("image/face_pts", (n, 3, 5), 0.0)
    toes = arr("image/toe_pts", (n, 3, 6), 0.0)
    kps = np.concatenate([np.concatenate([xys, vis], 1), face, toes], 2).transpose(0, 2, 1)  # (N, 25, 3)
    seen = (kps[..., 2] > 0).any(1)
    hw = np.asarray(features.get("image/heightwidths") or [], np.int64).reshape(-1, 2)
    tags = {"import": "hmmr_tfrecord", "stored_but_not_imported": [k for k in NOT_STORED if features.get(k)]}
    if features.get("meta/time_pts"):
        tags["time_pts"] = [int(t) for t in features["meta/time_pts"]]
    if features.get("image/filenames"):
        tags["first_filename"] = features["image/filenames"][0].decode(errors="replace")
    if features.get("meta/has_3d"):
        tags["has_3d"] = int(features["meta/has_3d"][0])
    frames = np.flatnonzero(seen)
    return AnnotatedVideo(
        video_id=video_id, source=source, detector=DETECTOR, extractor="hmmr_tfrecord", tags=tags, n_frames=n,
        people=[AnnotatedPerson(0, frames, kps[frames], np.full((len(frames), 4), np.nan, np.float32))] if len(frames) else [],
        height=int(hw[0, 0]) if len(hw) else None, width=int(hw[0, 1]) if len(hw) else None,
        error=f"{n - len(frames)} frames with no visible keypoint (no detection row)" if len(frames) < n else None,
    )


def read_tfrecord(path: Path) -> list[AnnotatedVideo]:
    path = Path(path)
    out = []
    for i, data in enumerate(read_records(path)):
        source = f"{path.resolve()}#{i}"
        try:
            features = parse_example(data)
        except TFRecordError as exc:
            raise TFRecordError(f"{source}: {exc}") from exc
        out.append(example_to_video(features, video_id=f"tfrecord:{hashlib.sha256(data).hexdigest()[:16]}", source=source))
    return out


def import_tfrecords(files: list[Path], settings: Settings) -> list[ImportedVideo]:
    """Read and check every file first (a damaged file stores nothing), then write one transaction
    per sequence; importing the same records again replaces their rows with the same ones."""
    videos = [v for f in files for v in read_tfrecord(f)]
    settings.ensure_dirs()
    with Lake(settings=settings) as lake:
        return store(videos, lake)
