"""Settings: environment variables (TICKVAULT_*) over an optional TOML file over defaults.

Every option lives here, with its default and a one-line description, so the
configuration reference in docs/ can be generated from this model. Server URLs default
to None: `tickvault demo` then starts embedded servers, and every other command falls
back to the conventional local ports (see ``Settings.pg_dsn`` / ``redis_dsn``).
"""

from __future__ import annotations

import difflib
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


#: KRX (07:00 with the 2026 pre-market) and NXT (to 20:00) trade within these KST hours; ten
#: minutes of margin at the end. The collectors' watchdog also asks the session table.
MARKET_HOURS = SessionHours(time(7, 0), time(20, 10))

KstTime = Annotated[time, BeforeValidator(parse_kst_time), PlainSerializer(lambda t: t.strftime("%H:%M"))]
KstHours = Annotated[SessionHours, NoDecode, BeforeValidator(parse_session_hours), PlainSerializer(str)]


#: PostgreSQL's identifier limit (NAMEDATALEN - 1): longer names are truncated without a word
PG_IDENTIFIER_BYTES = 63


class Settings(BaseSettings):
    # hide_input_in_errors: a ValidationError never carries a value (it may be a secret, or a
    # secret given under a misspelt name)
    model_config = SettingsConfigDict(env_prefix="TICKVAULT_", extra="forbid", validate_default=True, hide_input_in_errors=True)

    # --- servers and names (several installations may share one PostgreSQL and one Redis)
    redis_url: str | None = Field(None, description="Redis URL; unset: redis://127.0.0.1:6379/0 (demo: embedded)")
    pg_url: str | None = Field(None, description="PostgreSQL URL; unset: postgresql://postgres@127.0.0.1:5432/postgres (demo: embedded)")
    pg_schema: str = Field("tickvault", description="PostgreSQL schema holding this installation's tables (lowercase, at most 63 bytes)")
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
    cold_max_wait_ms: int = Field(100, ge=0, description="Max time the cold archiver gathers entries before a commit")
    cold_inline_row_limit: int = Field(
        100, ge=0, description="Lake commits of at most this many ticks land in the catalog (DuckLake data inlining), not a Parquet file; 0 = off"
    )
    cold_inline_flush_rows: int = Field(20000, ge=1, description="Inlined ticks that make the cold archiver flush them to Parquet")
    cold_inline_flush_s: float = Field(300.0, gt=0, description="Age of the oldest inlined tick that makes the cold archiver flush to Parquet")
    block_ms: int = Field(200, ge=1, description="XREADGROUP block time when the stream is idle")
    claim_idle_ms: int = Field(60000, ge=1000, description="Pending entries idle this long are claimed from dead consumers (checked this often while running)")
    hot_batch_max_bytes: int = Field(4 << 20, ge=1024, description="A hot-store batch stops growing once its stream entries hold this many bytes")
    cold_batch_max_bytes: int = Field(2 << 20, ge=1024, description="A lake batch stops growing once its stream entries hold this many bytes")
    lake_memory_limit_mb: int = Field(512, ge=64, description="DuckDB memory_limit of a lake connection (archiver, reconcile, compaction); see docs/lake.md")
    lake_threads: int = Field(2, ge=1, description="DuckDB threads of a lake connection (the archivers share the machine with PostgreSQL and Redis)")
    redis_timeout_s: float = Field(10.0, gt=0, description="Redis socket and connect timeout; a longer stall is retried like a lost connection")
    dlq_max_entries: int = Field(100_000, ge=100, description="Dead letters kept in <stream>:dlq (the oldest are trimmed)")
    dlq_max_age_days: int = Field(30, ge=1, description="Dead letters older than this are trimmed from <stream>:dlq")
    gaps_max_entries: int = Field(100_000, ge=100, description="Gap records kept in <stream>:gaps (the oldest are trimmed)")
    gaps_max_age_days: int = Field(30, ge=1, description="Gap records older than this are trimmed from <stream>:gaps")

    # --- wire format v2 frames (collectors, simulate, replay)
    frame_max_trades: int = Field(1000, ge=0, description="Trades per v2 frame entry at most (0: publish v1, one entry per trade)")
    frame_max_delay_ms: int = Field(5, ge=0, description="A collector holds trades at most this long to fill a frame")
    frame_max_bytes: int = Field(1 << 20, ge=1024, description="Bytes per v2 frame entry, about, at most")
    retry_max_s: float = Field(30.0, gt=0, description="Ceiling of the retry backoff when a store is down")

    # --- hot store
    hot_mode: Literal["auto", "timescaledb", "postgres"] = Field("auto", description="Hot store mode; auto = TimescaleDB when the extension is available")
    tick_retention_days: int = Field(30, ge=1, description="Days of ticks kept in the hot store")
    hot_candle_fold_ms: int = Field(
        0, ge=0,
        description="PostgreSQL mode: 0 = each write folds its ticks into candles_1m..1d; >0 = each write logs its candle delta "
        "and the archiver folds the deltas at most this often (candle tables lag the ticks by up to this)",
    )
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
    recovery_margin_minutes: int = Field(10, ge=0, le=180, description="Minutes after each venue's close (session table) before its daily recovery runs")
    compact_time: KstTime = Field(time(20, 40), description="KST time of the daily lake compaction (after both venues' recovery)")

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
    collect_session_hours: KstHours = Field(MARKET_HOURS, description=(
        "KST hours of trading days in which the stall watchdog is armed, inside the trade windows of the session "
        "table's venues ('00:00-24:00' = always on trading days)"))
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
    reconcile_final_time: KstTime = Field(time(20, 15), description="KST time of the day's final full reconcile (NXT's after-market ends 20:00)")

    # --- operations: tickvault run / health, database roles (docs/operations.md)
    pg_writer_role: str = Field("tickvault_writer", description="Role `tickvault init --roles` creates for the archivers (read/write data, no DDL)")
    pg_reader_role: str = Field("tickvault_reader", description="Read-only role `tickvault init --roles` creates for Grafana and notebooks")
    pg_writer_password: SecretStr | None = Field(None, description="Password set on the writer role (unset: role without password, e.g. peer/cert auth)")
    pg_reader_password: SecretStr | None = Field(None, description="Password set on the reader role (Grafana's datasource uses it)")
    run_restart_max_s: float = Field(60.0, gt=0, description="Ceiling of the restart backoff of a crashed component in `tickvault run`")
    health_max_age_s: float = Field(60.0, gt=0, description="`tickvault health` fails when an archiver has not read the stream for this long")
    report_dir: Path | None = Field(None, description="`tickvault run` writes each day's HTML integrity report here after recovery (unset: none)")

    @field_validator("pg_schema")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not value.replace("_", "a").isalnum() or not value[0].isalpha() or value.lower() != value:
            raise ValueError("pg_schema must be a lowercase identifier (letters, digits, _)")
        if len(value.encode()) > PG_IDENTIFIER_BYTES:
            # PostgreSQL would truncate it silently, and two long names would share one schema
            raise ValueError(f"pg_schema is {len(value.encode())} bytes; PostgreSQL names hold at most {PG_IDENTIFIER_BYTES}")
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
#: server URLs: secrets when they carry a password
URL_FIELDS = ("pg_url", "redis_url")

# a password in a URL's user info, or as a keyword / query parameter (libpq and redis-py spellings)
_URL_USERINFO_PASSWORD = re.compile(r"(?P<head>^[a-z][a-z0-9+.-]*://[^/@?#\s:]*):(?P<secret>[^@/?#\s]*)@", re.IGNORECASE)
_PARAMETER_PASSWORD = re.compile(r"(?P<head>(?:^|[?&\s])(?:ssl)?password\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^&\s]*)", re.IGNORECASE)


def redact_dsn(dsn: str) -> str:
    """``dsn`` (a URL or libpq keyword string) with every password replaced by ``***``: what
    messages may show of a server address."""
    redacted = _URL_USERINFO_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", dsn)
    return _PARAMETER_PASSWORD.sub(lambda m: f"{m.group('head')}***", redacted)


def holds_password(dsn: str) -> bool:
    return redact_dsn(dsn) != dsn


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file's table; a syntax error is one ConfigError line naming the file and line."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: TOML syntax error {str(exc).replace('(at ', 'at ').rstrip(')')}: fix that line") from None


def check_secret_file(path: Path) -> None:
    """A TOML file may hold secrets (a secret setting, or a server URL with a password) only
    when nobody but its owner can read it."""
    values = read_toml(path)
    held = sorted(set(values) & set(SECRET_FIELDS))
    held += [name for name in URL_FIELDS if isinstance(values.get(name), str) and holds_password(values[name])]
    if held and path.stat().st_mode & 0o077:
        raise PermissionError(
            f"config file {path} holds secrets ({', '.join(held)}) but others can read it; run `chmod 600 {path}` "
            "or move the secrets to TICKVAULT_* environment variables"
        )


def unknown_setting(name: str) -> str:
    """The line for a key no setting has: the closest name, and how keys are spelled in TOML."""
    plain = name.lower().removeprefix("tickvault_")
    if plain in Settings.model_fields:
        return f"unknown setting {name}: write {plain} (TOML keys are lowercase, without the TICKVAULT_ prefix)"
    close = difflib.get_close_matches(plain, list(Settings.model_fields), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"unknown setting {name}: {hint}TOML keys are lowercase, without the TICKVAULT_ prefix (see docs/configuration.md)"


def explain(error: ValidationError) -> str:
    """One line naming each bad setting by its variable (input values left out: they may be secrets)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        name = str(item["loc"][0]) if item["loc"] else "?"
        if item["type"] == "extra_forbidden":
            problems.append(unknown_setting(name))
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
