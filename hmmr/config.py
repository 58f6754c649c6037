"""One typed configuration for paths and harvest settings (environment variables ``HMMR_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    download_limits: dict[str, int] = Field(
        default_factory=lambda: {"youtube.com": 2, "vimeo.com": 2, "tiktok.com": 1, "instagram.com": 1},
        description="most downloads at once per site (host without www.); `hmmr deploy` turns each into "
        "the Prefect tag concurrency limit 'download:<site>'. Env: HMMR_DOWNLOAD_LIMITS='{\"youtube.com\": 2}'",
    )

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
