"""The data dictionary: every table, view and column of the warehouse with its type, unit and
meaning, rendered as Markdown from :mod:`warehouse.schemas` and :mod:`warehouse.migrations`.

``docs/data_dictionary.md`` is this module's output (``hmmr warehouse dictionary --write``); a test
keeps the committed file equal to it. View columns are read from the views themselves, created on a
throwaway lakehouse, so the dictionary lists what a query really returns.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hmmr.config import Settings
from pose_harvest.keypoints import HMMR25
from warehouse import schemas
from warehouse.migrations import MIGRATIONS

DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "data_dictionary.md"

CONVENTIONS = """\
Units used below:

* **pixels**: pixels of the video frame as decoded (after rotation metadata is applied), origin at the
  top-left corner, x to the right, y down; `videos.width` x `videos.height` is the frame size. Nothing
  in the warehouse is normalised: divide by width/height yourself when a model wants [0, 1].
* **frame index**: 0-based index of a frame at the decoded frame rate `videos.fps`; **seconds** =
  frame index / fps. Ranges named `end_frame` are inclusive in `tracks`, `track_frames` and the views,
  exclusive in `shots` (as in Python slices).
* **0-1**: a confidence or fraction. A keypoint is *visible* when its confidence is >= 0.1.
* Keypoint lists (`FLOAT[]`) hold exactly 25 values in HMMR-25 order
  (`pose_harvest.keypoints.HMMR25`): {joints}. Slots 0 and 5 hold the heels of OpenPose data and the
  ankles of LSP data, as in the official HMMR code. A missing keypoint is x = y = 0 with confidence 0.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(*cells: str) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table_md(name: str) -> list[str]:
    lines = [f"### `{name}`", "", schemas.TABLE_DOCS[name], "",
             f"Stored sorted by ({', '.join(schemas.SORT_KEYS[name])}).", "",
             "| column | type | unit | meaning |", "|---|---|---|---|"]
    lines += [_row(f"`{c.name}`", c.sql, c.unit, c.description) for c in schemas.TABLES[name]]
    return lines + [""]


def view_columns() -> dict[str, list[tuple[str, str]]]:
    """(column, DuckDB type) of every view in :data:`warehouse.schemas.VIEWS`, from a new empty lakehouse."""
    from warehouse.lake import ALIAS, Lake

    with tempfile.TemporaryDirectory() as tmp, Lake(settings=Settings(home=Path(tmp))) as lake:
        return {view: [(r[0], r[1]) for r in lake.con.execute(f"DESCRIBE {ALIAS}.{view}").fetchall()]
                for view in schemas.VIEWS}


def view_column_doc(view: str, column: str) -> tuple[str, str]:
    """(unit, meaning) of a view's column; KeyError when neither the view nor its sources say."""
    doc = schemas.VIEW_DOCS[view]
    if column in doc.columns:
        return doc.columns[column]
    for table in doc.sources:
        for c in schemas.TABLES[table]:
            if c.name == column:
                return c.unit, f"{c.description} (`{table}.{column}`)"
    raise KeyError(f"view {view}: column {column!r} is documented nowhere (add it to schemas.VIEW_DOCS)")


def render() -> str:
    """The whole data dictionary as Markdown."""
    lines = ["# Data dictionary", "",
             f"Schema version {schemas.SCHEMA_VERSION}. Generated from `warehouse/schemas.py` by "
             "`hmmr warehouse dictionary --write`; do not edit by hand.", "",
             "Query it with `hmmr sql \"SELECT ...\"` (read-only); every table below is a DuckLake table of "
             "Parquet files, every view a saved query over them.", "",
             CONVENTIONS.format(joints=", ".join(f"{i} {j}" for i, j in enumerate(HMMR25.joints))), "## Tables", ""]
    for name in schemas.TABLES:
        lines += _table_md(name)
    lines += ["## Views", ""]
    for view, cols in view_columns().items():
        lines += [f"### `{view}`", "", schemas.VIEW_DOCS[view].description, "",
                  "| column | type | unit | meaning |", "|---|---|---|---|"]
        lines += [_row(f"`{c}`", t, *view_column_doc(view, c)) for c, t in cols]
        lines.append("")
    lines += ["## Schema versions", "",
              "`hmmr warehouse migrate` brings a lakehouse written by an older hmmr to this version (DuckLake "
              "`ALTER TABLE`, one snapshot per step).", "",
              "| version | change |", "|---|---|", "| 1 | first version |"]
    lines += [_row(str(m.version), m.summary) for m in MIGRATIONS]
    return "\n".join(lines) + "\n"
