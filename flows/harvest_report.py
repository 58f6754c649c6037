"""What a harvest run shows in the Prefect UI: a progress artifact while it runs and one markdown
artifact at the end (videos by status, people found, tracks kept, links to the Parquet files, and the
dataset plots of the whole lakehouse: :func:`flows.plot_artifacts.dataset_markdown`).

Every number comes from the warehouse (rows of this run's ``run_id``), not from logs.
"""

from __future__ import annotations

from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from flows import plot_artifacts
from hmmr.config import Settings
from warehouse.lake import Lake

PARQUET_TABLES = ("detections", "tracks", "track_frames")
MAX_VIDEO_ROWS = 200  # per-video lines in the artifact; the status table always covers every video


class Progress:
    """A run's progress artifact (``key``), from 0 to 100 percent of ``total`` units of work."""

    def __init__(self, *, total: int, key: str, description: str):
        self.total = total
        self.done = 0
        self.artifact_id = create_progress_artifact(progress=100.0 if total == 0 else 0.0, key=key, description=description)

    def step(self) -> None:
        """One more unit done."""
        self.done += 1
        self.set(100.0 * self.done / max(self.total, 1))

    def set(self, percent: float) -> None:
        update_progress_artifact(self.artifact_id, progress=min(100.0, percent))


def _md(text) -> str:
    """A table cell: no pipes or line breaks."""
    return "" if text is None else str(text).replace("|", "\\|").replace("\n", " ")[:160]


def publish(settings: Settings, *, run_id: str, skipped: int) -> dict[str, int]:
    """Publish the run's markdown artifact (key ``harvest-summary``); return its per-status counts."""
    with Lake(settings=settings) as lake:
        by_status = lake.query(
            "SELECT status, count(*) AS videos, sum(coalesce(max_people, 0)) AS people, "
            "sum(coalesce(n_tracks_kept, 0)) AS tracks_kept FROM videos WHERE run_id = ? "
            "GROUP BY status ORDER BY status", [run_id]).to_pylist()
        videos = lake.query(
            "SELECT video_id, source, status, max_people, n_tracks_kept, error FROM videos WHERE run_id = ? "
            f"ORDER BY status, source LIMIT {MAX_VIDEO_ROWS}", [run_id]).to_pylist()
        files = lake.query(" UNION ALL ".join(
            f"SELECT DISTINCT video_id, '{t}' AS tbl, filename FROM {t} "
            f"WHERE video_id IN (SELECT video_id FROM videos WHERE run_id = $1)" for t in PARQUET_TABLES
        ) + " ORDER BY ALL", [run_id]).to_pylist()
    links: dict[str, list[str]] = {}
    for f in files:
        links.setdefault(f["video_id"], []).append(f"[{f['tbl']}](file://{f['filename']})")
    lines = [f"# Harvest {run_id}", "", f"Skipped (already harvested): {skipped}", ""]
    if by_status:
        lines += ["| status | videos | people found | tracks kept |", "|---|---|---|---|"]
        lines += [f"| {r['status']} | {r['videos']} | {r['people']} | {r['tracks_kept']} |" for r in by_status]
        lines += ["", "## Videos", "", "people found: most people in one frame; Parquet: this video's data files",
                  "", "| video | status | people found | tracks kept | Parquet | error |", "|---|---|---|---|---|---|"]
        lines += [f"| {_md(v['source'])} | {v['status']} | {_md(v['max_people'])} | {_md(v['n_tracks_kept'])} | "
                  f"{' '.join(links.get(v['video_id'], []))} | {_md(v['error'])} |" for v in videos]
    else:
        lines.append("_nothing new to harvest_")
    lines += plot_artifacts.dataset_markdown(settings, settings.home / "plots" / f"harvest-{run_id}")
    create_markdown_artifact(key="harvest-summary", markdown="\n".join(lines) + "\n",
                             description="Videos harvested in this run, by status")
    return {r["status"]: r["videos"] for r in by_status}
