"""The held-out split of mocap sequences, by subject: every sequence of a subject is on the same side.

Default rule (``hash_test``): a subject is held out when the SHA-256 of ``'<source>:<subject>'``, read
as a number in [0, 1), is below ``TEST_FRACTION``: about a quarter of subjects, the same answer on
every machine, whichever other subjects are imported with it. So that a source always has a test
side, when none of its subjects falls below the threshold the one with the lowest hash is held out
(for the CMU files in ``tests/data``: subject 131 of 01, 02, 12, 131).

A subject already stored keeps its side unless the user names the test subjects: then exactly those
are test and every other subject of the source is train, stored sequences included
(:func:`assign_splits`), so no subject is ever on both sides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

TEST_FRACTION = 0.25
DEFAULT_TEST_SUBJECTS = {"h36m": ("S9", "S11")}  # the standard Human3.6M protocol: train on S1, S5-S8


def subject_hash(source: str, subject: str) -> float:
    """``'<source>:<subject>'`` hashed to [0, 1)."""
    return int(hashlib.sha256(f"{source}:{subject}".encode()).hexdigest(), 16) / 2**256


def assign_splits(source: str, subjects: Iterable[str], stored: dict[str, str] | None = None,
                  test_subjects: Iterable[str] | None = None, fraction: float = TEST_FRACTION) -> dict[str, str]:
    """``'train'`` or ``'test'`` for every subject of ``source``: the incoming ``subjects`` and the
    ``stored`` ones (subject -> its stored split).

    ``test_subjects`` given: exactly those are test, every other subject train. Otherwise a stored
    subject keeps its side and a new one is test when it is in the source's standard test set
    (:data:`DEFAULT_TEST_SUBJECTS`) or, for a source without one, when its :func:`subject_hash` is
    below ``fraction``; if then no subject of a source without a standard set is on the test side,
    the new subject with the lowest hash is.
    """
    stored = dict(stored or {})
    everyone = set(subjects) | set(stored)
    if test_subjects is not None:
        held = {str(s) for s in test_subjects}
        return {s: "test" if s in held else "train" for s in everyone}
    new = sorted(everyone - set(stored), key=lambda s: subject_hash(source, s))
    out = dict(stored)
    if source in DEFAULT_TEST_SUBJECTS:
        out.update({s: "test" if s in DEFAULT_TEST_SUBJECTS[source] else "train" for s in new})
        return out
    out.update({s: "test" if subject_hash(source, s) < fraction else "train" for s in new})
    if new and "test" not in out.values():
        out[new[0]] = "test"
    return out
