"""The authors' tfrecords without TensorFlow: files written here in the exact TFRecord + tf.train.Example
wire format by a small writer that follows the specifications (its own CRC-32C table, its own protobuf
encoder), with the keys and shapes of the official ``convert_to_example_temporal``."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from hmmr.config import Settings
from pose_harvest.keypoints import HMMR25
from warehouse.catalog import read_only_query
from warehouse.importers.tfrecord import TFRecordError, import_tfrecords, parse_example, read_records, read_tfrecord

# -- a TFRecord + Example writer from the specifications ------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # Castagnoli polynomial, reflected
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    key = varint(number << 3 | wire)
    return key + (varint(len(payload)) + payload if wire == 2 else payload)


def feature(values, kind: str, packed: bool) -> bytes:
    if kind == "bytes":
        body = b"".join(field(1, 2, v) for v in values)
        return field(1, 2, body)  # Feature.bytes_list = 1
    if kind == "float":
        if packed:
            body = field(1, 2, struct.pack(f"<{len(values)}f", *values))
        else:
            body = b"".join(field(1, 5, struct.pack("<f", v)) for v in values)
        return field(2, 2, body)  # Feature.float_list = 2
    body = field(1, 2, b"".join(varint(int(v)) for v in values)) if packed else b"".join(field(1, 0, varint(int(v))) for v in values)
    return field(3, 2, body)  # Feature.int64_list = 3


def example(features: dict[str, tuple], packed: bool = True) -> bytes:
    """``tf.train.Example{features: Features{feature: map<string, Feature>}}``."""
    entries = b"".join(field(1, 2, field(1, 2, k.encode()) + field(2, 2, feature(v, kind, packed)))
                       for k, (v, kind) in features.items())
    return field(1, 2, entries)


def hmmr_sequence(kps: np.ndarray, *, face: bool = True, extra: dict | None = None) -> dict[str, tuple]:
    """Features of one sequence as ``convert_to_example_temporal`` writes them: ``labels`` (N, 3, 25)
    split into xys/visibilities (first 14), face_pts (next 5) and toe_pts (last 6)."""
    n = len(kps)
    labels = kps.transpose(0, 2, 1)  # (N, 3, 25)
    feats = {
        "meta/N": ([n], "int64"),
        "meta/has_3d": ([0], "int64"), "meta/has_3d_joints": ([0], "int64"),
        "image/filenames": ([f"frames/{i:06d}.jpg".encode() for i in range(n)], "bytes"),
        "image/heightwidths": ([300, 300] * n, "int64"),
        "image/xys": (labels[:, 0:2, :14].ravel().tolist(), "float"),
        "image/visibilities": (labels[:, 2, :14].astype(int).ravel().tolist(), "int64"),
        "image/centers": ([150, 150] * n, "int64"),
        "image/scale_factors": ([0.5, 0.5] * n, "float"),
        "image/crop_pts": ([-20, 7] * n, "int64"),
        "mosh/shape": ([-1.0] * 10, "float"),
        "mosh/poses": ([-1.0] * 72 * n, "float"),
        "mosh/gt3ds": ([0.0] * 42 * n, "float"),
        "image/cams": ([0.0] * 3 * n, "float"),
        "image/encoded": ([b"\xff\xd8\xff\xe0 not decoded \xff\xd9"] * n, "bytes"),
    }
    if face:
        feats["image/face_pts"] = (labels[:, :, 14:19].ravel().tolist(), "float")
        feats["image/toe_pts"] = (labels[:, :, 19:25].ravel().tolist(), "float")
    feats.update(extra or {})
    return feats


def sequence_kps(n: int, seed: int) -> np.ndarray:
    """(N, 25, 3) HMMR-order keypoints in 300 x 300 crop pixels, visibility 0/1; frames 3-4 empty."""
    rng = np.random.default_rng(seed)
    kps = np.zeros((n, 25, 3), np.float32)
    kps[..., 0] = rng.uniform(80, 220, (n, 25)).round(2)
    kps[..., 1] = rng.uniform(75, 225, (n, 25)).round(2)
    kps[..., 2] = (rng.random((n, 25)) > 0.15).astype(np.float32)
    kps[3:5, :, 2] = 0
    kps[kps[..., 2] == 0, :2] = 0
    return kps


def write_tfrecord(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(frame_record(r) for r in records))
    return path


# -- tests -----------------------------------------------------------------------------------------

def test_the_writers_crc_is_crc32c():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)


def test_packed_and_unpacked_fields_parse_the_same():
    feats = {"meta/N": ([2], "int64"), "image/crop_pts": ([-20, 7, 300, -1], "int64"),
             "image/xys": ([1.5, -2.25, 3e5], "float"), "image/filenames": ([b"a.jpg", b""], "bytes")}
    packed, unpacked = parse_example(example(feats, True)), parse_example(example(feats, False))
    assert packed == unpacked == {k: list(v) for k, (v, _) in feats.items()}


def test_sequences_become_one_track_each_in_hmmr_order(tmp_path):
    long_kps, short_kps = sequence_kps(45, 0), sequence_kps(12, 1)
    path = write_tfrecord(tmp_path / "insta_variety_00_copy00.tfrecord",
                          [example(hmmr_sequence(long_kps, extra={"meta/time_pts": ([100, 145], "int64")})),
                           example(hmmr_sequence(short_kps, face=False), packed=False)])
    videos = read_tfrecord(path)
    assert [v.n_frames for v in videos] == [45, 12]
    person = videos[0].people[0]
    assert list(person.frames) == [f for f in range(45) if f not in (3, 4)]
    np.testing.assert_array_equal(person.kps, long_kps[person.frames])
    assert videos[0].tags["time_pts"] == [100, 145] and "image/encoded" in videos[0].tags["stored_but_not_imported"]
    # without face/toe points those slots are (0, 0, 0), as the official reader's default
    assert not videos[1].people[0].kps[:, 14:, :].any()

    home = tmp_path / "home"
    imported = import_tfrecords([path], Settings(home=home))
    assert [(r.n_frames, r.n_detections, r.n_tracks_kept) for r in imported] == [(45, 43, 1), (12, 10, 0)]
    q = lambda sql: read_only_query(Settings(home=home), sql).to_pylist()  # noqa: E731
    tracks = q("SELECT v.source, v.width, v.height, v.detector, t.track_id, t.start_frame, t.end_frame, t.kept, t.drop_reason "
               "FROM tracks t JOIN videos v USING (video_id) ORDER BY v.source")
    assert [(t["source"].endswith(f"#{i}"), t["width"], t["height"], t["track_id"], t["start_frame"], t["end_frame"], t["kept"], t["drop_reason"])
            for i, t in enumerate(tracks)] == [(True, 300, 300, 0, 0, 44, True, None), (True, 300, 300, 0, 0, 11, False, "too_short")]
    det = q(f"SELECT frame, kp_x, kp_y, kp_conf FROM detections WHERE video_id = '{imported[0].video_id}' AND frame = 10")[0]
    np.testing.assert_allclose(np.stack([det["kp_x"], det["kp_y"], det["kp_conf"]], -1), long_kps[10])
    for slot, name in ((0, "right_heel"), (13, "head_top"), (14, "nose"), (15, "left_eye"), (19, "left_big_toe"), (23, "left_ankle")):
        assert HMMR25.joints[slot] == name  # the record's order is HMMR-25's
    interpolated = q(f"SELECT frame FROM track_frames WHERE video_id = '{imported[0].video_id}' AND interpolated ORDER BY frame")
    assert [r["frame"] for r in interpolated] == [3, 4]

    again = import_tfrecords([path], Settings(home=home))  # same records, same ids: replaced, not duplicated
    assert [r.video_id for r in again] == [r.video_id for r in imported]
    assert q("SELECT count(*) AS n FROM detections")[0]["n"] == 53


def test_damaged_files_are_reported_and_nothing_is_stored(tmp_path):
    good = [example(hmmr_sequence(sequence_kps(41, s))) for s in range(3)]
    data = bytearray(b"".join(frame_record(r) for r in good))
    second = 12 + len(good[0]) + 4  # byte offset of record 1
    bad_data = bytearray(data)
    bad_data[second + 12 + 40] ^= 0x01  # one bit inside record 1's data
    (tmp_path / "bad_data.tfrecord").write_bytes(bad_data)
    with pytest.raises(TFRecordError, match=rf"record 1 at byte {second}: data CRC mismatch"):
        list(read_records(tmp_path / "bad_data.tfrecord"))
    bad_len = bytearray(data)
    bad_len[second + 8] ^= 0xFF  # record 1's length CRC
    (tmp_path / "bad_len.tfrecord").write_bytes(bad_len)
    with pytest.raises(TFRecordError, match="record 1 .* length CRC mismatch"):
        list(read_records(tmp_path / "bad_len.tfrecord"))
    (tmp_path / "cut.tfrecord").write_bytes(data[:-100])
    with pytest.raises(TFRecordError, match="record 2 .* file ends inside the record"):
        list(read_records(tmp_path / "cut.tfrecord"))
    (tmp_path / "not_example.tfrecord").write_bytes(frame_record(b"\x0a\xff\xff\xff"))
    with pytest.raises(TFRecordError, match="not a tf.train.Example"):
        read_tfrecord(tmp_path / "not_example.tfrecord")
    (tmp_path / "no_keys.tfrecord").write_bytes(frame_record(example({"image/x": ([1.0], "float")})))
    with pytest.raises(TFRecordError, match="meta/N"):
        read_tfrecord(tmp_path / "no_keys.tfrecord")
    home = tmp_path / "home"
    with pytest.raises(TFRecordError):
        import_tfrecords([write_tfrecord(tmp_path / "ok.tfrecord", good), tmp_path / "bad_data.tfrecord"], Settings(home=home))
    assert not (home / "catalog.sqlite").exists()  # the good file was not half-imported either
