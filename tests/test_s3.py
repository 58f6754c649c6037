"""The lakehouse on object storage: DuckLake's Parquet files in a bucket of a real S3 server started here
(moto's server mode on 127.0.0.1), written by the OpenPose import, queried back read-only and trained
from through the Dataset, and checked against the same import into a local lakehouse.
"""

from __future__ import annotations

import socket
from pathlib import Path

import boto3
import pytest
import torch
from moto.server import ThreadedMotoServer

from hmmr.config import Settings
from warehouse import lake
from warehouse.catalog import ReadOnlyQueryError, read_only_query
from warehouse.importers.openpose import import_openpose
from warehouse.torch_dataset import WindowDataset, window_loader

FIXTURE = Path(__file__).parent / "data" / "openpose_pose2sim_cam01_body25b"
VIDEO = Path(__file__).resolve().parents[1] / "samples" / "pose2sim_single_cam01.mp4"
BUCKET, KEY, SECRET = "hmmr-lake", "test-key-id", "test-secret"


@pytest.fixture(scope="module")
def s3_endpoint():
    """host:port of a moto S3 server with an empty bucket ``hmmr-lake``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"127.0.0.1:{port}"
    client(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def client(endpoint: str):
    return boto3.client("s3", endpoint_url=f"http://{endpoint}", aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET, region_name="us-east-1")


@pytest.fixture(scope="module")
def on_s3(s3_endpoint, tmp_path_factory) -> Settings:
    """Settings from the HMMR_* environment, as a deployment sets them; the import writes to the bucket."""
    env = {"HMMR_HOME": str(tmp_path_factory.mktemp("s3") / "home"), "HMMR_DATA_PATH": f"s3://{BUCKET}/lake/",
           "HMMR_S3_ENDPOINT": s3_endpoint, "HMMR_S3_ACCESS_KEY_ID": KEY, "HMMR_S3_SECRET_ACCESS_KEY": SECRET,
           "HMMR_S3_URL_STYLE": "path", "HMMR_S3_USE_SSL": "false"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        settings = Settings()
    assert settings.s3_url_style == "path" and settings.s3_use_ssl is False
    import_openpose(FIXTURE, str(VIDEO), settings)
    return settings


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("local") / "home")
    import_openpose(FIXTURE, str(VIDEO), settings)
    return settings


def q(settings: Settings, sql: str) -> list[dict]:
    return read_only_query(settings, sql).to_pylist()


def test_the_import_writes_parquet_to_the_bucket_and_reads_back_the_same_rows(on_s3, local, s3_endpoint):
    keys = [o["Key"] for o in client(s3_endpoint).list_objects_v2(Bucket=BUCKET)["Contents"]]
    for table in ("videos", "shots", "detections", "tracks", "track_frames"):
        assert any(k.startswith(f"lake/main/{table}/") and k.endswith(".parquet") for k in keys), (table, keys)
    assert not list(on_s3.home.rglob("*.parquet"))  # only the catalog and the raw video are on this disk
    for sql in ("SELECT * EXCLUDE (harvested_at, run_id, raw_path) FROM videos",
                "SELECT * EXCLUDE (video_id) FROM detections ORDER BY frame, det_idx",
                "SELECT * EXCLUDE (video_id) FROM track_frames ORDER BY track_id, frame",
                "SELECT * EXCLUDE (video_id) FROM training_windows ORDER BY track_id, start_frame"):
        assert q(on_s3, sql) == q(local, sql), sql
    assert q(on_s3, "SELECT count(*) AS n FROM training_windows") == [{"n": 125}]


def test_read_only_sql_stays_inside_the_lakehouse_prefix(on_s3, s3_endpoint):
    client(s3_endpoint).put_object(Bucket=BUCKET, Key="elsewhere/notes.csv", Body=b"a,b\n1,2\n")
    with pytest.raises(ReadOnlyQueryError):
        q(on_s3, f"SELECT * FROM read_csv('s3://{BUCKET}/elsewhere/notes.csv')")
    with pytest.raises(ReadOnlyQueryError):
        q(on_s3, f"COPY (SELECT 1) TO 's3://{BUCKET}/lake/x.csv'")


def test_the_s3_settings_become_a_duckdb_secret(on_s3, s3_endpoint):
    con = lake.connect()
    try:
        lake.attach(con, on_s3, read_only=True)
        (text,) = con.execute("SELECT secret_string FROM duckdb_secrets() WHERE name = 'hmmr_s3'").fetchone()
    finally:
        con.close()
    assert f"endpoint={s3_endpoint}" in text and "url_style=path" in text and "use_ssl=false" in text
    assert f"key_id={KEY}" in text and SECRET not in text  # DuckDB redacts the secret


def test_the_dataset_trains_from_the_bucket(on_s3, local):
    remote, here = WindowDataset(on_s3, coords="crop"), WindowDataset(local, coords="crop")
    assert len(remote) == len(here) == 125
    for i in (0, 124):
        for key in ("kps", "boxes", "affine"):
            torch.testing.assert_close(remote[i][key], here[i][key], rtol=0, atol=0)
    batches = list(window_loader(remote, batch_size=25, num_workers=2, seed=3))  # each worker attaches S3 itself
    assert sum(len(b["start_frame"]) for b in batches) == 125
    one = WindowDataset(on_s3, "SELECT * FROM training_windows WHERE track_id = 2 AND start_frame = 37", frames=True,
                        coords="crop")[0]
    assert one["images"].shape == (20, 3, 224, 224)
