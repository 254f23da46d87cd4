"""Where a lake lives: its catalog (SQLite file or PostgreSQL schema) and its data (directory or S3).

The default is one machine: ``catalog.sqlite`` and ``data/`` under ``lake_dir``. For scale-out
(docs/scale-out.md) the catalog moves to PostgreSQL (``lake_catalog``, ``lake_catalog_schema``)
so archivers on several hosts share it, and the Parquet files to S3-compatible storage
(``lake_data = s3://bucket/prefix``) reached through a DuckDB secret. The S3 secret only ever
appears in ``secret_sql`` — never in ``describe`` or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...core.config import Settings

CATALOG_FILE = "catalog.sqlite"
DATA_DIR = "data"
SECRET_NAME = "tickvault_lake_s3"


def quoted(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class S3Access:
    """What DuckDB's httpfs needs to reach the bucket (``CREATE SECRET`` options)."""

    key_id: str | None
    secret: str | None
    endpoint: str | None
    region: str
    url_style: str
    use_ssl: bool


@dataclass(frozen=True)
class LakeLocation:
    lake_dir: Path
    catalog_url: str | None = None  # PostgreSQL URL; None: the SQLite file under lake_dir
    catalog_schema: str = "tickvault_lake"
    data: str | None = None  # s3://bucket/prefix or a directory; None: data/ under lake_dir
    s3: S3Access | None = None

    @classmethod
    def of(cls, settings: Settings, data: str | None = None) -> LakeLocation:
        """The settings' lake; ``data``: the same lake with its files at another place (a migration's target)."""
        data = data if data is not None else settings.lake_data
        s3 = None
        if data and data.startswith("s3://"):
            s3 = S3Access(
                key_id=settings.s3_key_id,
                secret=settings.s3_secret.get_secret_value() if settings.s3_secret else None,
                endpoint=settings.s3_endpoint,
                region=settings.s3_region,
                url_style=settings.s3_url_style,
                use_ssl=settings.s3_use_ssl,
            )
        return cls(Path(settings.lake_dir), settings.lake_catalog, settings.lake_catalog_schema, data, s3)

    @property
    def on_postgres(self) -> bool:
        return self.catalog_url is not None

    @property
    def on_s3(self) -> bool:
        return self.data is not None and self.data.startswith("s3://")

    @property
    def metadata_relation(self) -> str:
        """Where DuckDB sees DuckLake's own ducklake_* tables of the lake attached as ``lake``."""
        return f"__ducklake_metadata_lake.{self.catalog_schema}" if self.on_postgres else "__ducklake_metadata_lake"

    def s3_filesystem(self) -> Any:
        """A pyarrow S3 filesystem for the bucket (readers of ``tickvault lake files``, migration)."""
        from pyarrow import fs

        assert self.s3 is not None, "only for a lake whose data is on S3"
        return fs.S3FileSystem(
            access_key=self.s3.key_id, secret_key=self.s3.secret, region=self.s3.region,
            endpoint_override=self.s3.endpoint, scheme="https" if self.s3.use_ssl else "http",
            force_virtual_addressing=self.s3.url_style == "vhost" and self.s3.endpoint is not None,
        )

    @property
    def catalog_file(self) -> Path:
        return self.lake_dir / CATALOG_FILE

    @property
    def local_data_dir(self) -> Path | None:
        """The directory of the Parquet files, or None when they live on S3."""
        if self.on_s3:
            return None
        return Path(self.data) if self.data else self.lake_dir / DATA_DIR

    @property
    def data_path(self) -> str:
        """DATA_PATH of the ATTACH (ends with '/')."""
        local = self.local_data_dir
        path = str(local.resolve()) if local is not None else str(self.data)
        return path.rstrip("/") + "/"

    def describe(self) -> str:
        """Where the lake is, for messages and logs (no credentials)."""
        catalog = f"PostgreSQL catalog schema {self.catalog_schema} at {_without_password(self.catalog_url)}" if self.catalog_url \
            else f"{self.catalog_file}"
        return f"{catalog}, data {self.data_path}"

    def attach_sql(self, alias: str, read_only: bool = False, override_data_path: bool = False) -> str:
        """The ATTACH statement that opens this lake (also what docs/lake.md tells notebook users).

        ``override_data_path``: read the files at this location although the catalog records another
        (a migration checks its copy this way before it switches the catalog)."""
        options = [f"DATA_PATH {quoted(self.data_path)}"]
        if override_data_path:
            options.append("OVERRIDE_DATA_PATH true")
        if self.catalog_url:
            target = f"ducklake:postgres:{self.catalog_url}"
            options.append(f"METADATA_SCHEMA {quoted(self.catalog_schema)}")
        else:
            target = f"ducklake:sqlite:{self.catalog_file.resolve()}"
            options += ["META_JOURNAL_MODE 'WAL'", "META_BUSY_TIMEOUT 0"]
        if read_only:
            options.append("READ_ONLY")
        return f"ATTACH {quoted(target)} AS {alias} ({', '.join(options)})"

    def for_script(self) -> LakeLocation:
        """This location with the catalog password left for the reader to fill in (a script on disk
        never holds it; the S3 secret is left out by ``secret_sql(secret=...)``)."""
        return replace(self, catalog_url=_without_password(self.catalog_url, "<your catalog password>") if self.catalog_url else None)

    def secret_sql(self, secret: str | None = None) -> str | None:
        """``CREATE SECRET`` for the bucket (plain ``SET s3_*`` is ignored by some DuckLake maintenance
        functions); ``secret`` replaces the real one (e.g. a placeholder in a printed script)."""
        if self.s3 is None:
            return None
        options = ["TYPE s3", f"REGION {quoted(self.s3.region)}", f"URL_STYLE {quoted(self.s3.url_style)}",
                   f"USE_SSL {'true' if self.s3.use_ssl else 'false'}", f"SCOPE {quoted(self.data_path)}"]
        if self.s3.endpoint:
            options.append(f"ENDPOINT {quoted(self.s3.endpoint)}")
        if self.s3.key_id:
            options.append(f"KEY_ID {quoted(self.s3.key_id)}")
        value = secret if secret is not None else self.s3.secret
        if value is not None:
            options.append(f"SECRET {quoted(value)}")
        return f"CREATE OR REPLACE SECRET {SECRET_NAME} ({', '.join(options)})"


def _without_password(url: str | None, mask: str = "***") -> str:
    """A PostgreSQL URL with its password (if any) replaced by ``mask``."""
    if not url or "@" not in url or "://" not in url:
        return url or ""
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':' + mask if ':' in credentials else ''}@{host}"
