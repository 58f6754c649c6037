"""``hmmr server`` and ``hmmr deploy``: a local Prefect server with the UI, and the deployments,
work pools and download limits on a server (see :mod:`flows.deploy`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from hmmr.prefect_env import DEFAULTS

console = Console()

ApiUrlOpt = Annotated[
    Optional[str],
    typer.Option("--api-url", envvar="PREFECT_API_URL", help="Prefect API, e.g. http://127.0.0.1:4200/api (hmmr server)."),
]


def server(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for other machines).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API and the UI.")] = 4200,
) -> None:
    """Start a Prefect server with its UI (http://HOST:PORT) for scheduled runs and workers.

    Offline-safe: analytics off. Its database is PREFECT_HOME/prefect.db (default ~/.prefect).
    With --host 0.0.0.0, set PREFECT_UI_API_URL to the API address the browsers will use.
    Then, in other shells: export PREFECT_API_URL=http://HOST:PORT/api; hmmr deploy SOURCES;
    prefect worker start --pool hmmr-cpu.
    """
    env = {**DEFAULTS, **os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_API_HOST": host, "PREFECT_SERVER_API_PORT": str(port)}
    env.pop("PREFECT_API_URL", None)  # the server serves the API; it must not point at another one
    if host not in ("0.0.0.0", "::"):  # else the browser's address is not known here: set it yourself
        env.setdefault("PREFECT_UI_API_URL", f"http://{host}:{port}/api")  # the UI's default is port 4200
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    console.print(f"Prefect server and UI on http://{host}:{port}  (API: http://{host}:{port}/api)")
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)


def _gpu_count() -> int:
    import torch

    return max(1, torch.cuda.device_count())


def deploy(
    sources: Annotated[Path, typer.Argument(help="Sources file the scheduled harvest reads at every run (edit it to add videos).", exists=True, dir_okay=False)],
    home: Annotated[Optional[Path], typer.Option("--home", envvar="HMMR_HOME", help="Data root the runs write to. Default ./hmmr-data.")] = None,
    cron: Annotated[str, typer.Option(help="Schedule of harvest/daily (cron).")] = "0 3 * * *",
    timezone: Annotated[str, typer.Option(help="Time zone of the cron schedule.")] = "UTC",
    gpus: Annotated[Optional[int], typer.Option(help="Concurrency limit of the hmmr-gpu pool: GPUs of the GPU worker (default: this machine's, at least 1).")] = None,
    api_url: ApiUrlOpt = None,
) -> None:
    """Create or update the deployments, work pools and per-site download limits on a Prefect server.

    harvest/daily runs on the hmmr-cpu pool on the cron schedule and harvests only what is new;
    harvest/gpu runs on demand on the hmmr-gpu pool (one run per GPU). Per-site download limits come
    from HMMR_DOWNLOAD_LIMITS (JSON, e.g. '{"youtube.com": 2}'). Start a worker for each pool:
    prefect worker start --pool hmmr-cpu
    """
    if not api_url:
        console.print("[red]no Prefect server:[/red] start one with `hmmr server`, then "
                      "export PREFECT_API_URL=http://127.0.0.1:4200/api (or pass --api-url)")
        raise typer.Exit(2)
    os.environ["PREFECT_API_URL"] = api_url
    from flows.deploy import apply_all
    from hmmr.config import Settings

    settings = Settings.at(home)
    done = apply_all(sources=sources, settings=settings, gpus=gpus or _gpu_count(), cron=cron, timezone=timezone)
    for name, dep_id in done.deployments.items():
        console.print(f"deployment {name}: {dep_id}")
    for pool, limit in done.pools.items():
        console.print(f"work pool {pool}: {'no limit' if limit is None else f'{limit} run(s) at once'}")
    for tag, limit in done.download_limits.items():
        console.print(f"tag limit {tag}: {limit} download(s) at once")
    console.print(f"UI: {api_url.removesuffix('/api')}/deployments   run now: prefect deployment run harvest/daily")


def register(app: typer.Typer) -> None:
    """Add these commands to the ``hmmr`` app."""
    app.command()(server)
    app.command()(deploy)


def wait_healthy(api: str, proc, timeout_s: float = 120) -> bool:
    """Poll ``{api}/health`` of a Prefect server started as ``proc`` (a ``subprocess.Popen``) until it
    answers 200 (True) or ``timeout_s`` passes (False). Raises RuntimeError if the server exits."""
    import time

    import httpx

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with status {proc.returncode}")
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False
