"""Keypoint layouts and converters, checked against the joint names."""

from __future__ import annotations

import numpy as np
import pytest

from pose_harvest.keypoints import (BLAZEPOSE33, BODY25, BODY25B, COCO17, COCO18, HMMR25, HMMR25_FLIP, LAYOUTS,
                                    LSP14, convert, index_map)


@pytest.mark.parametrize("src", list(LAYOUTS.values()), ids=list(LAYOUTS))
@pytest.mark.parametrize("dst", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_index_tables_follow_names(src, dst):
    idx = index_map(src, dst)
    for i, name in enumerate(dst.joints):
        if idx[i] < 0:
            assert name not in src.joints
            continue
        got = src.joints[idx[i]]
        assert got == name or (dst is HMMR25 and name.endswith("_heel") and got == name.replace("heel", "ankle"))


def test_hmmr_table_matches_the_reference():
    """hmmr-reference.md's BODY_25 column, slot by slot."""
    ref = [24, 10, 9, 12, 13, 21, 4, 3, 2, 5, 6, 7, 1, -1, 0, 16, 15, 18, 17, 19, 22, 20, 23, 14, 11]
    assert index_map(BODY25, HMMR25).tolist() == ref
    assert len(HMMR25) == 25 and HMMR25.joints[:14] == LSP14.joints[:0] + HMMR25.joints[:14]


def test_heel_ankle_trap():
    # LSP data: slots 0/5 carry the ankles; OpenPose data: the heels.
    lsp = index_map(LSP14, HMMR25)
    assert lsp[0] == LSP14.index("right_ankle") and lsp[5] == LSP14.index("left_ankle")
    b25 = index_map(BODY25, HMMR25)
    assert BODY25.joints[b25[0]] == "right_heel" and BODY25.joints[b25[23]] == "left_ankle"


def test_neck_derived_from_shoulders():
    kps = np.zeros((17, 3), np.float32)
    kps[COCO17.index("left_shoulder")] = [10, 20, 0.9]
    kps[COCO17.index("right_shoulder")] = [30, 40, 0.6]
    out = convert(kps, COCO17, HMMR25)
    np.testing.assert_allclose(out[HMMR25.index("neck")], [20, 30, 0.6])
    kps[COCO17.index("right_shoulder"), 2] = 0
    assert (convert(kps, COCO17, HMMR25)[HMMR25.index("neck")] == 0).all()


def test_round_trip_and_flip():
    rng = np.random.default_rng(0)
    b = rng.random((4, 25, 3)).astype(np.float32)
    back = convert(convert(b, BODY25B, BLAZEPOSE33), BLAZEPOSE33, BODY25B)
    shared = [i for i, n in enumerate(BODY25B.joints) if n in BLAZEPOSE33.joints]
    np.testing.assert_array_equal(back[:, shared], b[:, shared])
    flipped = [HMMR25.joints[i] for i in HMMR25_FLIP]
    assert flipped[0] == "left_heel" and flipped[12] == "neck" and (HMMR25_FLIP[HMMR25_FLIP] == np.arange(25)).all()
    assert len(COCO18) == 18
    with pytest.raises(ValueError, match="expected"):
        convert(np.zeros((24, 3)), BODY25, HMMR25)
