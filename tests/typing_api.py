"""The public API as a user's type checker sees it: mypy checks this file (tests/test_lint.py); it is never run."""

from __future__ import annotations

from typing import assert_type

import pandas as pd
import polars as pl
import pyarrow as pa

import tickvault


def outputs(vault: tickvault.Vault) -> None:
    assert_type(vault.ticks("005930", "2026-11-27"), pa.Table)
    assert_type(vault.ticks("005930", "2026-11-27", output="pandas"), pd.DataFrame)
    assert_type(vault.ticks(["005930"], "2026-11-27", "2026-11-28", output="polars"), pl.DataFrame)
    assert_type(vault.candles(["005930"], "15m", "2026-11-02", "2026-11-06", output="pandas", exact=True), pd.DataFrame)
    assert_type(vault.candles(None, "1d", "2026-11-02", "2026-11-06", source="cold", session="all", fill=True, as_of=12), pa.Table)
    assert_type(tickvault.candles("005930", "1h", "2026-11-02", output="polars"), pl.DataFrame)
    assert_type(tickvault.ticks("005930", "2026-11-27", settings=vault.settings), pa.Table)
    assert_type(vault.symbols("2026-11-27"), list[str])
    assert_type(vault.snapshot(), int)


def construction(settings: tickvault.Settings) -> None:
    with tickvault.Vault(settings, pg_schema="other") as vault:
        assert_type(vault, tickvault.Vault)
    tickvault.Vault(config_file="tickvault.toml").close()


def refused(vault: tickvault.Vault) -> None:
    vault.ticks("005930", "2026-11-27", source="warm")  # type: ignore[call-overload]
    vault.candles("005930", "15m", "2026-11-02", output="excel")  # type: ignore[call-overload]
    vault.ticks("005930", "2026-11-27", "2026-11-28", "cold")  # type: ignore[call-overload]  # options are keyword-only
    tickvault.Valut()  # type: ignore[attr-defined]


def errors() -> None:
    try:
        tickvault.Vault().snapshot()
    except tickvault.StoreUnavailable as exc:
        assert_type(exc, tickvault.StoreUnavailable)
    except tickvault.TickvaultError:
        pass
