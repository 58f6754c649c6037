"""Offline-safe Prefect defaults, applied before Prefect is imported (stack-notes, measured here).

Analytics off (no network), a generous ephemeral-server start-up timeout (10-16 s on 2 cores).
Values already in the environment win.
"""

from __future__ import annotations

import os

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


def configure() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
