"""The on-disk spool: exact round trips, FIFO order, a hard size bound, crash leftovers."""
import re
from datetime import datetime, timezone

import pytest

from pganalytics.collector import codec, config
from pganalytics.collector.batch import QueryStatsBatch, RowsBatch, SamplesBatch
from pganalytics.collector.spool import Spool

AT = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone.utc)


def batches():
    return [
        QueryStatsBatch("a", AT, b"PGCOPY\n\xff\r\n\x00binary\x00", 3, 7, AT),
        SamplesBatch("a", "pg_stat_database", AT, [("pg_up", {}, "gauge", 1.0),
                                                    ("m", {"datname": "x"}, "counter", 2.5)],
                     [(5, "x")]),
        RowsBatch("a", "plans", AT, [{"queryid": 1, "plan": [{"Plan": {"Node Type": "Seq Scan"}}]}]),
    ]


@pytest.mark.parametrize("batch", batches(), ids=lambda b: type(b).__name__)
def test_codec_round_trip_is_exact(batch):
    assert codec.decode(codec.encode(batch)) == batch


def test_fifo_order_survives_reopen(tmp_path):
    spool = Spool(tmp_path)
    for b in batches():
        spool.put(b)
    reopened = Spool(tmp_path)
    got = []
    while (head := reopened.oldest()) is not None:
        got += head[1]
        reopened.ack(head[0])
    assert got == batches() and len(reopened) == 0 and reopened.bytes == 0


def test_a_group_is_one_segment_and_comes_back_as_one(tmp_path):
    spool = Spool(tmp_path)
    spool.put_many(batches())
    spool.put(batches()[0])
    assert len(spool) == 4 and len(list(tmp_path.glob("*.seg"))) == 2
    reopened = Spool(tmp_path)
    assert len(reopened) == 4 and reopened.bytes == spool.bytes
    path, group = reopened.oldest()
    assert group == batches()
    reopened.ack(path)
    assert reopened.oldest()[1] == [batches()[0]] and len(reopened) == 1


def test_a_truncated_segment_is_an_error_not_a_short_group(tmp_path):
    spool = Spool(tmp_path)
    spool.put_many(batches())
    seg = next(tmp_path.glob("*.seg"))
    seg.write_bytes(seg.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        Spool(tmp_path).oldest()


def test_legacy_single_batch_files_are_replayed_first(tmp_path):
    (tmp_path / "0000000000000003.batch").write_bytes(codec.encode(batches()[2]))
    spool = Spool(tmp_path)
    spool.put_many(batches()[:2])
    got = []
    while (head := spool.oldest()) is not None:
        got += head[1]
        spool.ack(head[0])
    assert got == [batches()[2], *batches()[:2]]


def test_bound_drops_oldest_and_counts(tmp_path):
    one = len(codec.encode(batches()[1])) + 8  # + the record's length prefix
    spool = Spool(tmp_path, max_bytes=one * 2)
    for i in range(5):
        b = batches()[1]
        b.source = f"s{i}"
        spool.put(b)
    assert len(spool) == 2 and spool.dropped == 3
    assert spool.oldest()[1][0].source == "s3"


def test_leftover_temp_file_is_removed(tmp_path):
    (tmp_path / "0000000000000007.tmp").write_bytes(b"half written")
    Spool(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))


def test_rejected_batches_are_kept_with_reason(tmp_path):
    spool = Spool(tmp_path)
    path = spool.reject(batches()[2], "bad plan")
    assert codec.decode(path.read_bytes()) == batches()[2]
    assert path.with_suffix(".reason").read_text() == "bad plan\n"
    assert len(spool) == 0


@pytest.mark.parametrize("data,message", [
    ({}, "no store"),
    ({"store": {"dsn": "x"}, "collector": {"interval_s": 0}}, "interval_s must be a number >= 0.1"),
    ({"store": {"dsn": "x"}, "targets": [{"name": "a"}]}, "targets[0].conn is required"),
    ({"store": {"dsn": "x"}, "targets": [{"name": "a", "conn": "x"}, {"name": "a", "conn": "y"}]}, "listed twice"),
    ({"store": {"dsn": "x"}, "colector": {}}, "unknown section(s): colector"),
])
def test_config_errors_say_what_to_fix(data, message):
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.parse(data)


def test_config_defaults_and_per_target_cadence():
    conf = config.parse({"store": {"dsn": "x"}, "collector": {"interval_s": 5},
                         "targets": [{"name": "a", "conn": "service=a", "interval_s": 2}]})
    assert conf.interval_s == 5 and conf.slow_interval_s == 60
    assert conf.targets[0].interval_s == 2 and conf.targets[0].slow_interval_s == 60


def test_schedule_keeps_a_fixed_rate_without_bursts():
    from pganalytics.collector.daemon import _next

    assert _next(0.0, 60, 1000.0) == 1060.0  # first cycle: the next one is a full interval away
    assert _next(1060.0, 60, 1060.2) == 1120.0  # on time: fixed rate, no drift
    assert _next(1060.0, 60, 1300.0) == 1360.0  # far behind: no catch-up burst
