"""Two writer processes at once end with exact row counts: with the SQLite catalog, and with a
PostgreSQL catalog on a real PostgreSQL server started here (Debian's ``postgresql`` package; as
root the server runs as the ``postgres`` user, which it insists on)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from hmmr.config import Settings
from warehouse.catalog import read_only_query
from warehouse.lake import Lake, current_snapshot, list_snapshots

REPO = Path(__file__).resolve().parents[1]
WRITES = 30  # transactions per writer, as measured in stack-notes


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else (Path(shutil.which("initdb")).parent if shutil.which("initdb") else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> str:
    """A PostgreSQL server on a free port with its socket in a temp dir; yields the libpq string of
    an empty database ``hmmr_lake``."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does it as root)")
    root = Path(tempfile.mkdtemp(prefix="hmmr-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60",
        "-o", f"-p {port} -k {root} -c listen_addresses=''", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", str(root), "-p", str(port), "-U", "postgres", "hmmr_lake")
        yield f"dbname=hmmr_lake host={root} port={port} user=postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from hmmr.config import Settings
    from tests.test_warehouse import _write
    from warehouse.lake import Lake
    home, catalog, name, n = sys.argv[1], sys.argv[2] or None, sys.argv[3], int(sys.argv[4])
    with Lake(settings=Settings(home=Path(home), catalog=catalog)) as lake:
        for i in range(n):
            _write(lake, f"{name}-{i}", 40)
""")


def _two_writers(settings: Settings) -> None:
    with Lake(settings=settings):  # create the tables once, as the harvest flow does before its videos
        pass
    start = current_snapshot(settings)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(settings.home), settings.catalog or "", name, str(WRITES)],
                              cwd=REPO, stderr=subprocess.PIPE, text=True) for name in ("p", "q")]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    rows = read_only_query(settings, "SELECT count(*) AS v, count(DISTINCT video_id) AS ids, "
                                     "(SELECT count(*) FROM detections) AS d FROM videos").to_pylist()
    assert rows == [{"v": 2 * WRITES, "ids": 2 * WRITES, "d": 2 * WRITES * 40}]
    per_video = read_only_query(settings, "SELECT DISTINCT count(*) AS n FROM detections GROUP BY video_id").to_pylist()
    assert per_video == [{"n": 40}]
    messages = [m for m in list_snapshots(settings)["commit_message"].to_pylist()[start + 1:]]
    assert sorted(messages) == sorted(f"video {n}-{i}" for n in "pq" for i in range(WRITES))  # one snapshot per write
    assert current_snapshot(settings) == start + 2 * WRITES


def test_two_writers_sqlite_catalog(tmp_path):
    _two_writers(Settings(home=tmp_path / "home"))


def test_two_writers_postgres_catalog(tmp_path, postgres):
    settings = Settings(home=tmp_path / "home", catalog=f"postgres:{postgres}")
    _two_writers(settings)
    assert not (settings.home / "catalog.sqlite").exists()  # the catalog really is the server's
    out = subprocess.run(["psql", "-h", postgres.split("host=")[1].split()[0], "-p", postgres.split("port=")[1].split()[0],
                          "-U", "postgres", "-d", "hmmr_lake", "-tAc", "SELECT count(*) FROM ducklake_data_file"],
                         capture_output=True, text=True, check=True)
    assert int(out.stdout) >= 2 * WRITES * 2  # videos + detections files of every write, in PostgreSQL's tables
