"""Screenshot of the Prefect UI's flow-run page of a real harvest, for the README (run by hand).

Starts ``hmmr server`` on a free port with a fresh database, harvests two sample clips and a text
file posing as a video (so a failed video shows) with ``hmmr harvest`` against it, then has headless
Chromium (Debian's ``chromium``: ``apt-get install -y chromium``) take a picture of the flow run's page.

    .venv/bin/python scripts/ui_screenshot.py [-o docs/ui_flow_run.png] [--tab Artifacts]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from hmmr.cli_orchestration import wait_healthy

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def harvest(work: Path, api: str) -> str:
    """Harvest two samples and one bad file; the id of the flow run."""
    bad = work / "not_a_video.mp4"
    bad.write_text("this is a text file, not a video\n")
    sources = work / "sources.txt"
    sources.write_text(f"{REPO}/samples/pose2sim_single_cam01.mp4 #lab\n{REPO}/samples/sports2d_demo.mp4 #sports\n{bad}\n")
    env = dict(os.environ, PREFECT_API_URL=api, HMMR_HOME=str(work / "home"))
    subprocess.run([sys.executable, "-m", "hmmr.cli", "harvest", str(sources), "--no-progress"], env=env, check=True, cwd=REPO)
    runs = httpx.post(f"{api}/flow_runs/filter", json={"sort": "START_TIME_DESC", "limit": 1}).json()
    return runs[0]["id"]


def screenshot(url: str, out: Path, chromium: str, budget_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1600,1100",
                        f"--virtual-time-budget={budget_ms}", f"--screenshot={out.resolve()}", url],
                       check=True, capture_output=True, timeout=180)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", type=Path, default=REPO / "docs" / "ui_flow_run.png")
    ap.add_argument("--tab", default=None, help="open this tab of the flow-run page (e.g. Artifacts)")
    ap.add_argument("--budget-ms", type=int, default=15000, help="virtual time Chromium gives the page to render")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("needs Chromium: apt-get install -y chromium")
    work = Path(tempfile.mkdtemp(prefix="hmmr-ui-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ, PREFECT_HOME=str(work / "prefect"))
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "hmmr.cli", "server", "--port", str(port)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_healthy(api, server):
            raise SystemExit("prefect server did not become healthy")
        run_id = harvest(work, api)
        url = f"http://127.0.0.1:{port}/runs/flow-run/{run_id}" + (f"?tab={args.tab}" if args.tab else "")
        screenshot(url, args.out, chromium, args.budget_ms)
        print(f"wrote {args.out} from {url}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
