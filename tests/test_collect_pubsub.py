"""Legacy pub/sub bridge on the real Redis: mapped messages reach the stream and both
archivers store them exactly as the legacy collector sent them; a killed pub/sub
connection is recorded as a gap covering every message published meanwhile."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from tickvault.core.wire import KST, UTC, InvalidTick
from tickvault.services.archiver import build_archiver
from tickvault.services.collectors.pubsub import FieldMapping, PubSubBridge, pubsub_client
from tickvault.services.collectors.service import read_gaps
from tickvault.stores.hot import HotStore
from tickvault.stores.lake import Lake

MAPPING = """
source = "legacy"
ts_format = "hhmmss"

[fields]
symbol = "code"
ts = "time"
date = "date"
price = "price"
volume = "qty"
cum_volume = "acc_qty"
side = "bs"

[side_values]
buy = ["2"]
sell = ["1"]
"""


def legacy_messages(day: str, n: int) -> list[dict]:
    cum = {"005930": 0, "000660": 0}
    out = []
    for i in range(n):
        code = "005930" if i % 3 else "000660"
        qty = 1 + (i * 7) % 40
        cum[code] += qty
        out.append({"code": code, "date": day, "time": f"09{i // 60 % 60:02d}{i % 60:02d}", "price": str(70000 + 100 * (i % 5)),
                    "qty": qty, "acc_qty": cum[code], "bs": "2" if i % 2 else "1", "extra": "ignored"})
    return out


def expected_row(m: dict) -> tuple:
    d = m["date"]
    ts = datetime(int(d[:4]), int(d[4:6]), int(d[6:]), int(m["time"][:2]), int(m["time"][2:4]), int(m["time"][4:]), tzinfo=KST)
    return (m["code"], ts.astimezone(UTC), Decimal(m["price"]), m["qty"], m["acc_qty"], "B" if m["bs"] == "2" else "S", "legacy")


def stored_rows(table) -> list[tuple]:
    cols = ["symbol", "ts", "price", "volume", "cum_volume", "side", "source"]
    return sorted(tuple(r[c] for c in cols) for r in table.select(cols).to_pylist())


def start_bridge(bridge: PubSubBridge) -> threading.Thread:
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    assert bridge.subscribed.wait(5), "bridge did not subscribe"
    return thread


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_mapping_file_and_its_errors(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(MAPPING)
    mapping = FieldMapping.load(path)
    assert (mapping.symbol, mapping.cum_volume, mapping.ts_format, mapping.buy) == ("code", "acc_qty", "hhmmss", ("2",))
    json_path = tmp_path / "m.json"
    json_path.write_text(json.dumps({"fields": {"symbol": "s"}, "ts_format": "epoch_ms"}))
    fields = FieldMapping.load(json_path).to_fields(
        {"s": "005930", "ts": 1763600706000, "price": "-70100", "volume": "3", "cum_volume": "10"}, datetime.now(UTC)
    )
    assert (fields["ts"], fields["price"], fields["side"]) == ("2025-11-20T01:05:06+00:00", "70100", "")
    path.write_text('[fields]\nsymbl = "code"\n')
    with pytest.raises(ValueError, match="unknown \\[fields\\] symbl"):
        FieldMapping.load(path)
    with pytest.raises(InvalidTick, match="no 'code' field"):
        mapping.to_fields({"time": "090000"}, datetime.now(UTC))


def test_bridge_delivers_what_the_archivers_store_identically(settings, rclient, test_id, tmp_path):
    (tmp_path / "m.toml").write_text(MAPPING)
    channel = f"tvtest:{test_id}:legacy"
    bridge = PubSubBridge(rclient, channel, settings.stream, FieldMapping.load(tmp_path / "m.toml"))
    thread = start_bridge(bridge)
    messages = legacy_messages("20261120", 300)
    for m in messages:
        assert rclient.publish(channel, json.dumps(m)) == 1
    rclient.publish(channel, "not json at all")
    rclient.publish(channel, json.dumps({"code": "005930", "date": "20261120", "time": "0900", "price": "1", "qty": 1, "acc_qty": 1}))
    wait_for(lambda: bridge.stats.ticks == 300 and bridge.stats.parse_errors == 2)
    bridge.stop()
    thread.join(5)

    assert rclient.xlen(settings.stream) == 300
    dlq = [f for _, f in rclient.xrange(settings.dlq_stream)]
    assert [d["stage"] for d in dlq] == ["collect-pubsub"] * 2
    assert dlq[0]["f.raw"] == "not json at all" and "HHMMSS" in dlq[1]["reason"]

    for group in ("hot", "cold"):
        build_archiver(settings, group).run_until_idle()
    start, end = datetime(2026, 11, 20, tzinfo=KST), datetime(2026, 11, 21, tzinfo=KST)
    hot, lake = HotStore(settings), Lake(settings)
    try:
        want = sorted(expected_row(m) for m in messages)
        assert stored_rows(hot.read_ticks(start, end)) == want
        assert stored_rows(lake.read_ticks(start, end)) == want
    finally:
        hot.close()
        lake.close()


def test_killed_connection_is_a_recorded_gap(settings, rclient, test_id):
    channel = f"tvtest:{test_id}:legacy"
    name = f"tvtest-{test_id}-bridge"
    listener = pubsub_client(settings.redis_dsn)
    listener.connection_pool.connection_kwargs["client_name"] = name
    bridge = PubSubBridge(rclient, channel, settings.stream, FieldMapping(source="legacy"), reconnect_initial_s=0.3, listener=listener)
    thread = start_bridge(bridge)

    def message(i: int) -> str:
        ts = (datetime.now(KST)).replace(microsecond=0).isoformat()
        return json.dumps({"symbol": "005930", "ts": ts, "price": "70000", "volume": 1, "cum_volume": i + 1})

    delivered, lost, lost_at = [], [], []

    def publish(i: int) -> None:
        if rclient.publish(channel, message(i)) == 1:
            delivered.append(i)
        else:
            lost.append(i)
            lost_at.append(datetime.now(UTC))

    for i in range(20):
        publish(i)
    ours = [c for c in rclient.client_list(_type="pubsub") if c.get("name") == name]
    assert len(ours) == 1
    killed_at = datetime.now(UTC)
    rclient.client_kill_filter(_id=ours[0]["id"])
    i = 20
    while not bridge.subscribed.is_set() or i < 25:
        publish(i)
        i += 1
        time.sleep(0.02)
        assert i < 1000, "bridge never came back"
    for j in range(i, i + 10):
        publish(j)
    wait_for(lambda: bridge.stats.ticks == len(delivered), timeout=30.0)
    bridge.stop()
    thread.join(5)

    assert lost, "messages published while the bridge was down should have had no receiver"
    cums = sorted(int(f["cum_volume"]) for _, f in rclient.xrange(settings.stream))
    assert cums == [i + 1 for i in delivered]
    gaps = read_gaps(rclient, settings.stream)
    assert len(gaps) == 1 and gaps[0]["source"] == "pubsub" and channel in gaps[0]["reason"]
    start, end = datetime.fromisoformat(gaps[0]["start"]), datetime.fromisoformat(gaps[0]["end"])
    assert start <= killed_at <= end and end - start < timedelta(seconds=10)
    assert all(start <= t <= end for t in lost_at)
    assert bridge.stats.reconnects == 1
