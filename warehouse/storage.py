"""Object storage for the lakehouse's Parquet files: S3, or any S3-compatible server (MinIO, Ceph, moto).

``HMMR_DATA_PATH=s3://bucket/prefix/`` puts the data files there (the catalog stays where
``HMMR_CATALOG`` says). The connection settings (``HMMR_S3_ENDPOINT``, ``HMMR_S3_ACCESS_KEY_ID``,
``HMMR_S3_SECRET_ACCESS_KEY``, ``HMMR_S3_REGION``, ``HMMR_S3_URL_STYLE``, ``HMMR_S3_USE_SSL``) become a
temporary DuckDB secret on every connection that attaches the lakehouse; nothing is written to disk.
"""

from __future__ import annotations

import duckdb

from hmmr.config import Settings

SECRET = "hmmr_s3"


def is_s3(path: str) -> bool:
    return path.startswith("s3://")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def secret_sql(settings: Settings) -> str:
    """``CREATE OR REPLACE TEMPORARY SECRET`` for DuckDB's httpfs from the ``s3_*`` settings; keys
    left unset are left out (a public bucket, or a server without authentication)."""
    opts = ["TYPE s3", f"REGION {_quote(settings.s3_region)}", f"URL_STYLE {_quote(settings.s3_url_style)}",
            f"USE_SSL {'true' if settings.s3_use_ssl else 'false'}"]
    if settings.s3_endpoint:
        opts.append(f"ENDPOINT {_quote(settings.s3_endpoint)}")
    if settings.s3_access_key_id:
        opts.append(f"KEY_ID {_quote(settings.s3_access_key_id)}")
    if settings.s3_secret_access_key:
        opts.append(f"SECRET {_quote(settings.s3_secret_access_key.get_secret_value())}")
    return f"CREATE OR REPLACE TEMPORARY SECRET {SECRET} ({', '.join(opts)})"


def configure_duckdb(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Load httpfs (from the installed extension packages) and create the S3 secret on ``con``."""
    con.execute("LOAD httpfs")
    con.execute(secret_sql(settings))
