"""One typed configuration for paths and harvest settings (environment variables ``HMMR_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where data lives. Everything sits under ``home`` (``HMMR_HOME``, default ``./hmmr-data``)."""

    model_config = SettingsConfigDict(env_prefix="HMMR_", extra="forbid")

    home: Path = Field(default=Path("hmmr-data"), description="root of all hmmr data")
    catalog: str | None = Field(
        default=None,
        description="DuckLake catalog: None = SQLite file HOME/catalog.sqlite; "
        "or 'postgres:dbname=... host=...' for a shared PostgreSQL catalog",
    )
    data_path: str | None = Field(
        default=None, description="where Parquet data files go: None = HOME/lake/, or s3://bucket/prefix/"
    )
    s3_endpoint: str | None = Field(
        default=None, description="host[:port] of an S3-compatible server (MinIO, Ceph, moto); None = AWS S3"
    )
    s3_access_key_id: str | None = Field(default=None, description="S3 access key id")
    s3_secret_access_key: SecretStr | None = Field(default=None, description="S3 secret access key")
    s3_region: str = Field(default="us-east-1", description="S3 region")
    s3_url_style: Literal["vhost", "path"] = Field(
        default="vhost", description="'path' (bucket in the URL path) for most local servers; 'vhost' for AWS"
    )
    s3_use_ssl: bool = Field(default=True, description="https to the S3 endpoint; false for a local http server")
    download_limits: dict[str, int] = Field(
        default_factory=lambda: {"youtube.com": 2, "vimeo.com": 2, "tiktok.com": 1, "instagram.com": 1},
        description="most downloads at once per site (host without www.); `hmmr deploy` turns each into "
        "the Prefect tag concurrency limit 'download:<site>'. Env: HMMR_DOWNLOAD_LIMITS='{\"youtube.com\": 2}'",
    )

    train_after_new_tracks: int = Field(
        default=1000, ge=1,
        description="kept tracks a harvest must add since the newest model's training data before it emits the event "
        "that starts the train/when-data-grows deployment (flows.triggers)",
    )

    @classmethod
    def at(cls, home: str | Path | None) -> Settings:
        """Settings from the environment, with ``home`` in place of ``HMMR_HOME`` when one is given."""
        return cls(home=Path(home)) if home else cls()

    @property
    def raw_dir(self) -> Path:
        """Content-addressed store of downloaded videos."""
        return self.home / "raw"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def download_archive(self) -> Path:
        """yt-dlp's download archive (one line per finished download)."""
        return self.home / "yt-dlp-archive.txt"

    def ensure_dirs(self) -> None:
        for d in (self.home, self.raw_dir, self.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
