"""What the ``hmmr`` command modules share: the ``--home`` option and the settings it gives.

Kept apart from :mod:`hmmr.cli`, which imports every command module, so that they can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    from hmmr.config import Settings

HomeOpt = Annotated[
    Optional[Path],
    typer.Option("--home", envvar="HMMR_HOME", help="Data root: raw videos, lakehouse, logs. Default ./hmmr-data."),
]


def settings_for(home: Path | None) -> Settings:
    """The settings of a command run with ``--home home`` (None: ``HMMR_HOME`` or the default).
    ``hmmr.config`` (pydantic-settings) is imported here, at first use, not when the CLI starts."""
    from hmmr.config import Settings

    return Settings.at(home)
