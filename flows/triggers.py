"""The events that start training and evaluation, and the facts they are decided on.

* ``hmmr.curated-tracks.grown`` (:data:`DATA_GROWN`): emitted at the end of a harvest run when the
  warehouse holds at least ``Settings.train_after_new_tracks`` more kept tracks than the data the
  newest model was trained on (all kept tracks when there is no model yet). The ``train/when-data-grows``
  deployment is triggered by it.
* ``hmmr.model.trained`` (:data:`MODEL_TRAINED`): emitted by the train flow when it has written a
  checkpoint; payload ``checkpoint`` (path). The ``evaluate/after-train`` deployment is triggered by it
  and scores that checkpoint.

Both name the warehouse as their resource, ``hmmr.warehouse.<HOME resolved>``, so the triggers of one
warehouse's deployments never fire for another's. A model is a run folder ``HOME/runs/<id>/last.pt``;
the newest one (by modification time) is "the last model", and the snapshot it was trained on is in
its checkpoint (``extra.snapshot``, written by the train flow).
"""

from __future__ import annotations

from pathlib import Path

from prefect.events import emit_event

from hmmr.config import Settings
from model.train import read_checkpoint
from warehouse.catalog import read_only_query

DATA_GROWN = "hmmr.curated-tracks.grown"
MODEL_TRAINED = "hmmr.model.trained"


def resource_id(settings: Settings) -> str:
    """The events' resource id for the warehouse of ``settings``."""
    return f"hmmr.warehouse.{settings.home.resolve()}"


def latest_checkpoint(settings: Settings) -> Path | None:
    """The newest ``HOME/runs/*/last.pt``, or None when no model was trained under ``HOME``."""
    found = sorted((settings.home / "runs").glob("*/last.pt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def kept_tracks(settings: Settings, at_version: int | None = None) -> int:
    """Kept curated tracks in the warehouse (as of snapshot ``at_version`` if given)."""
    return read_only_query(settings, "SELECT count(*) AS n FROM tracks WHERE kept", at_version=at_version)["n"][0].as_py()


def new_tracks_since_last_model(settings: Settings) -> tuple[int, Path | None]:
    """Kept tracks now minus kept tracks in the snapshot the newest model was trained on, and that
    model's checkpoint (None, and every kept track, when there is none)."""
    last = latest_checkpoint(settings)
    now = kept_tracks(settings)
    if last is None:
        return now, None
    snapshot = read_checkpoint(last, mmap=True)["extra"].get("snapshot")
    return now - (kept_tracks(settings, snapshot) if snapshot is not None else 0), last


def announce_growth(settings: Settings) -> int | None:
    """Emit :data:`DATA_GROWN` when the curated data has grown by ``settings.train_after_new_tracks``
    kept tracks since the last model; returns the number of new tracks when it did, else None."""
    new, last = new_tracks_since_last_model(settings)
    if new < settings.train_after_new_tracks:
        return None
    emit_event(event=DATA_GROWN, resource={"prefect.resource.id": resource_id(settings)},
               payload={"new_tracks": new, "home": str(settings.home.resolve()), "last_model": str(last) if last else None})
    return new


def announce_model(settings: Settings, checkpoint: Path) -> None:
    """Emit :data:`MODEL_TRAINED` for ``checkpoint``."""
    emit_event(event=MODEL_TRAINED, resource={"prefect.resource.id": resource_id(settings)},
               payload={"checkpoint": str(Path(checkpoint).resolve()), "home": str(settings.home.resolve())})
