"""Settings: environment variables (TICKVAULT_*) over an optional TOML file over defaults.

Every option lives here, with its default and a one-line description, so the
configuration reference in docs/ can be generated from this model. Server URLs default
to None: `tickvault demo` then starts embedded servers, and every other command falls
back to the conventional local ports (see ``Settings.pg_dsn`` / ``redis_dsn``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from .errors import ConfigError

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
CONFIG_ENV = "TICKVAULT_CONFIG"
HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_kst_time(value: object) -> time:
    """'16:10' (or a TOML local time) -> time(16, 10): a wall-clock time in KST."""
    if isinstance(value, time):
        return value
    match = HH_MM.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"want HH:MM in KST (00:00 to 23:59), got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class SessionHours:
    """KST hours of a trading day, ``end`` exclusive; '24:00' as the end means to midnight."""

    start: time
    end: time

    def __contains__(self, moment: time) -> bool:
        return self.start <= moment < self.end if self.end > self.start else True

    def __str__(self) -> str:
        end = "24:00" if self.end == time.max else self.end.strftime("%H:%M")
        return f"{self.start:%H:%M}-{end}"


def parse_session_hours(value: object) -> SessionHours:
    """'08:30-18:10' -> SessionHours(08:30, 18:10); '00:00-24:00' means always."""
    if isinstance(value, SessionHours):
        return value
    first, sep, second = value.partition("-") if isinstance(value, str) else ("", "", "")
    try:
        if not sep:
            raise ValueError
        end = time.max if second.strip() == "24:00" else parse_kst_time(second)
        return SessionHours(parse_kst_time(first), end)
    except ValueError:
        raise ValueError(f"want HH:MM-HH:MM in KST (e.g. 08:30-18:10), got {value!r}") from None


#: KRX trades 08:30-18:00 KST (pre-market to after-hours); ten minutes of margin at the end.
MARKET_HOURS = SessionHours(time(8, 30), time(18, 10))

KstTime = Annotated[time, BeforeValidator(parse_kst_time), PlainSerializer(lambda t: t.strftime("%H:%M"))]
KstHours = Annotated[SessionHours, NoDecode, BeforeValidator(parse_session_hours), PlainSerializer(str)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKVAULT_", extra="forbid", validate_default=True)

    # --- servers and names (several installations may share one PostgreSQL and one Redis)
    redis_url: str | None = Field(None, description="Redis URL; unset: redis://127.0.0.1:6379/0 (demo: embedded)")
    pg_url: str | None = Field(None, description="PostgreSQL URL; unset: postgresql://postgres@127.0.0.1:5432/postgres (demo: embedded)")
    pg_schema: str = Field("tickvault", description="PostgreSQL schema holding this installation's tables")
    lake_dir: Path = Field(Path("tickvault-lake"), description="Directory of the cold lake (catalog + Parquet files)")
    stream: str = Field("tickvault:ticks", description="Redis stream of ticks; dead letters go to <stream>:dlq")

    # --- scale-out (docs/scale-out.md): every default keeps the single-machine setup
    lake_catalog: str | None = Field(
        None, description="PostgreSQL URL of the lake catalog (archivers on several hosts); unset: the SQLite file catalog.sqlite under lake_dir",
    )
    lake_catalog_schema: str = Field("tickvault_lake", description="PostgreSQL schema of the lake catalog's ducklake_* tables (with lake_catalog)")
    lake_data: str | None = Field(None, description="Where the lake's Parquet files live: s3://bucket/prefix or a directory; unset: data/ under lake_dir")
    s3_endpoint: str | None = Field(None, description="host:port of the S3 API for lake_data on s3:// (unset: AWS)")
    s3_region: str = Field("us-east-1", description="S3 region of lake_data")
    s3_key_id: str | None = Field(None, description="S3 access key id of lake_data")
    s3_secret: SecretStr | None = Field(None, description="S3 secret access key of lake_data")
    s3_url_style: Literal["path", "vhost"] = Field("vhost", description="S3 addressing: vhost (AWS) or path (most self-hosted servers)")
    s3_use_ssl: bool = Field(True, description="Use HTTPS to the S3 endpoint")
    redis_cluster: bool = Field(False, description="redis_url names a node of a Redis Cluster (the stream is then sharded: stream_shards)")
    stream_shards: int = Field(1, ge=1, le=100, description="Shards of the stream: (venue, symbol) -> <stream>:{NN} by crc32; 1 = the plain stream key")
    pg_read_url: str | None = Field(None, description="PostgreSQL URL of a streaming replica for hot-store reads (queries, verify); unset: the primary")

    # --- archivers
    hot_batch_size: int = Field(5000, ge=1, description="Max stream entries per hot-store write")
    cold_batch_size: int = Field(50000, ge=1, description="Max stream entries per lake commit (fewer, larger files)")
    cold_max_wait_ms: int = Field(1000, ge=0, description="Max time the cold archiver gathers entries before a commit")
    block_ms: int = Field(200, ge=1, description="XREADGROUP block time when the stream is idle")
    claim_idle_ms: int = Field(60000, ge=1000, description="Pending entries idle this long are claimed from dead consumers")
    retry_max_s: float = Field(30.0, gt=0, description="Ceiling of the retry backoff when a store is down")

    # --- hot store
    hot_mode: Literal["auto", "timescaledb", "postgres"] = Field("auto", description="Hot store mode; auto = TimescaleDB when the extension is available")
    tick_retention_days: int = Field(30, ge=1, description="Days of ticks kept in the hot store")
    partitions_ahead_days: int = Field(3, ge=1, description="PostgreSQL mode: daily partitions created ahead")
    compress_after_days: int = Field(7, ge=1, description="TimescaleDB: compress tick chunks older than this")
    candles_1m_retention_days: int | None = Field(365, description="Days of 1m candles kept (None: forever)")
    candles_5m_retention_days: int | None = Field(None, description="Days of 5m candles kept (None: forever)")
    candles_1h_retention_days: int | None = Field(None, description="Days of 1h candles kept (None: forever)")
    candles_1d_retention_days: int | None = Field(None, description="Days of 1d candles kept (None: forever)")
    metrics_retention_days: int = Field(30, ge=1, description="Days of system metrics kept in the hot store")

    # --- stream safety and sync
    stream_max_entries: int = Field(20_000_000, ge=1000, description="Alarm when the stream holds more entries than this (never trimmed unconsumed)")
    reconcile_interval_s: int = Field(600, ge=10, description="Reconciler period for today's data inside run/archive")
    recovery_time: KstTime = Field(time(16, 10), description="KST time of the daily broker recovery on trading days")
    compact_time: KstTime = Field(time(16, 40), description="KST time of the daily lake compaction (after recovery's upserts)")

    # --- metrics
    metrics_port: int = Field(9108, description="Prometheus endpoint port (/metrics)")
    metrics_host: str = Field("127.0.0.1", description="Prometheus endpoint address (loopback by default)")
    metrics_interval_s: float = Field(10.0, gt=0, description="Seconds between metric samples written to the hot store")

    # --- brokers (secrets only from the environment or a file with safe permissions)
    kis_appkey: SecretStr | None = Field(None, description="KIS app key")
    kis_appsecret: SecretStr | None = Field(None, description="KIS app secret")
    kis_paper: bool = Field(False, description="Use the KIS paper-trading (mock) endpoints")
    kis_base_url: str | None = Field(None, description="KIS REST base URL; unset: real or paper by kis_paper")
    kis_ws_url: str | None = Field(None, description="KIS WebSocket URL; unset: real or paper by kis_paper")
    kiwoom_appkey: SecretStr | None = Field(None, description="Kiwoom app key")
    kiwoom_secretkey: SecretStr | None = Field(None, description="Kiwoom secret key")
    kiwoom_base_url: str = Field("https://api.kiwoom.com", description="Kiwoom REST base URL")
    kiwoom_ws_url: str = Field("wss://api.kiwoom.com:10000/api/dostk/websocket", description="Kiwoom WebSocket URL")

    # --- collectors (tickvault collect kis|kiwoom|pubsub; see docs/collectors.md)
    collect_reconnect_initial_s: float = Field(1.0, gt=0, description="First reconnect delay after a lost broker session (doubles, jittered)")
    collect_reconnect_max_s: float = Field(60.0, gt=0, description="Ceiling of the reconnect backoff")
    collect_stall_s: float = Field(60.0, gt=0, description="Stall watchdog: reconnect when no frame arrives for this many seconds during the session")
    collect_session_hours: KstHours = Field(MARKET_HOURS, description="KST hours of trading days in which the stall watchdog is armed ('00:00-24:00' = always)")
    collect_metrics_port: int = Field(
        9109, ge=0, le=65535,
        description="Prometheus endpoint port of a `tickvault collect` process (0: none); each collector on a host needs its own, apart from metrics_port",
    )
    kis_ws_max_subscriptions: int = Field(40, ge=1, description="KIS real-time registrations per WebSocket session (KIS: 41 per session; samples use 40)")
    kis_ws_extra_apps: SecretStr | None = Field(None, description="More KIS app keys for more sessions: 'appkey:appsecret' pairs separated by commas")
    kiwoom_ws_max_subscriptions: int = Field(100, ge=1, description="Symbols per Kiwoom REG (one session); more are refused")

    # --- broker REST clients and daily recovery
    broker_token_dir: Path | None = Field(None, description="Directory of cached broker access tokens (0700, files 0600); unset: ~/.cache/tickvault/tokens")
    broker_timeout_s: float = Field(10.0, gt=0, description="Timeout of one broker REST call, seconds")
    broker_max_retries: int = Field(6, ge=0, description="Retries of a broker call refused for rate or a transient failure")
    kis_rate_per_s: float | None = Field(None, gt=0, description="KIS REST calls per second per app key; unset: 19 real, 1.8 paper")
    kis_token_wait_s: float = Field(61.0, ge=0, description="Wait before retrying when KIS refuses to issue a token (about once a minute allowed)")
    kiwoom_rate_per_s: float = Field(4.0, gt=0, description="Kiwoom REST calls per second per app key")
    recovery_broker: Literal["kis", "kiwoom"] = Field("kis", description="Broker the daily recovery compares with")

    # --- sync: reconcile schedule, stream trimming (docs/sync.md)
    trim_interval_s: int = Field(60, ge=1, description="Seconds between safe stream trims inside run/archive")
    stream_max_memory_mb: int | None = Field(None, ge=1, description="Also alarm when the stream uses more Redis memory than this (None: entries only)")
    reconcile_settle_s: int = Field(120, ge=0, description="Scheduled reconciles of today leave ticks younger than this to the archivers")
    reconcile_final_time: KstTime = Field(time(18, 10), description="KST time of the day's final full reconcile (after-hours trading ends 18:00)")

    # --- operations: tickvault run / health, database roles (docs/operations.md)
    pg_writer_role: str = Field("tickvault_writer", description="Role `tickvault init --roles` creates for the archivers (read/write data, no DDL)")
    pg_reader_role: str = Field("tickvault_reader", description="Read-only role `tickvault init --roles` creates for Grafana and notebooks")
    pg_writer_password: SecretStr | None = Field(None, description="Password set on the writer role (unset: role without password, e.g. peer/cert auth)")
    pg_reader_password: SecretStr | None = Field(None, description="Password set on the reader role (Grafana's datasource uses it)")
    run_restart_max_s: float = Field(60.0, gt=0, description="Ceiling of the restart backoff of a crashed component in `tickvault run`")
    health_max_age_s: float = Field(60.0, gt=0, description="`tickvault health` fails when an archiver has not read the stream for this long")

    @field_validator("pg_schema")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not value.replace("_", "a").isalnum() or not value[0].isalpha() or value.lower() != value:
            raise ValueError("pg_schema must be a lowercase identifier (letters, digits, _)")
        return value

    @field_validator("lake_catalog")
    @classmethod
    def _postgres_catalog(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("lake_catalog must be a postgresql:// URL (unset: the SQLite catalog under lake_dir)")
        return value

    @field_validator("lake_catalog_schema")
    @classmethod
    def _catalog_identifier(cls, value: str) -> str:
        if not value.replace("_", "a").isalnum() or not value[0].isalpha() or value.lower() != value:
            raise ValueError("lake_catalog_schema must be a lowercase identifier (letters, digits, _)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = os.environ.get(CONFIG_ENV)
        if toml_path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(toml_path)))
        return tuple(sources)

    # --- derived names
    @property
    def pg_dsn(self) -> str:
        return self.pg_url or DEFAULT_PG_URL

    @property
    def redis_dsn(self) -> str:
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def pg_read_dsn(self) -> str:
        """Where hot-store reads go: the replica when one is set, else the primary."""
        return self.pg_read_url or self.pg_dsn

    @property
    def dlq_stream(self) -> str:
        return f"{self.stream}:dlq"


SECRET_FIELDS = tuple(name for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation))


def check_secret_file(path: Path) -> None:
    """A TOML file may hold secrets only when nobody but its owner can read it."""
    with open(path, "rb") as handle:
        names = tomllib.load(handle).keys()
    held = sorted(set(names) & set(SECRET_FIELDS))
    if held and path.stat().st_mode & 0o077:
        raise PermissionError(
            f"config file {path} holds secrets ({', '.join(held)}) but others can read it; run `chmod 600 {path}` "
            "or move the secrets to TICKVAULT_* environment variables"
        )


def explain(error: ValidationError) -> str:
    """One line naming each bad setting by its variable (input values left out: they may be secrets)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        name = str(item["loc"][0]) if item["loc"] else "?"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown setting {name}; see docs/configuration.md for the names")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"TICKVAULT_{name.upper()} ({name}): {message}")
    return "; ".join(problems)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from env + optional TOML; a missing TOML file is an error, not a silent default.

    A malformed value raises ConfigError with one line naming the variable, so a bad schedule
    time stops the process at start-up rather than failing later inside a job."""
    previous = os.environ.get(CONFIG_ENV)
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found; pass an existing TOML file to --config")
        os.environ[CONFIG_ENV] = str(path)  # the TOML source reads it; restored below
    try:
        toml_path = os.environ.get(CONFIG_ENV)
        if toml_path:
            check_secret_file(Path(toml_path))
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(explain(exc)) from None
    finally:
        if previous is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = previous
