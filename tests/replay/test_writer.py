"""The recording writer: closed files only, receive order kept, SIGKILL loses at most the open batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tps19.engine.recording.format import data_files, partitions
from tps19.engine.recording.reader import RecordingError, read_rows
from tps19.engine.recording.writer import RecordingWriter, WriterSettings, files_of

CHILD = Path(__file__).with_name("writer_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _row(g: int, sym: str = "BTC/USDT", ns: int | None = None) -> tuple:
    return (g, ns or time.time_ns(), 1000 + g, "delta", sym, g, g - 1, [100.0], [1.0], [101.0], [2.0], f'{{"g":{g}}}')


def test_rows_come_back_in_receive_order_across_partitions(tmp_path: Path) -> None:
    w = RecordingWriter(tmp_path, "sim", WriterSettings(batch_rows=7, rotate_bytes=1 << 30)).start()
    for g in range(1, 101):
        w.add(_row(g, "BTC/USDT" if g % 2 else "ETH/USDT"))
    w.close()
    rows = list(read_rows(tmp_path))
    assert [r[1] for r in rows] == list(range(1, 101))
    assert {r[5] for r in rows} == {"BTC/USDT", "ETH/USDT"}
    assert rows[4][8:12] == ([100.0], [1.0], [101.0], [2.0]) and rows[4][12] == '{"g":5}'
    # close compacted each partition's batches into one segment
    for _, _, _, d in partitions(tmp_path):
        files = data_files(d)
        assert len(files) == 1 and files[0].segment, [f.path.name for f in files]
    assert not list(tmp_path.rglob("part-*"))


def test_partitions_by_venue_symbol_and_day(tmp_path: Path) -> None:
    day1 = 1_700_000_000 * 10**9  # 2023-11-14
    w = RecordingWriter(tmp_path, "sim", WriterSettings(batch_rows=2)).start()
    for g in range(1, 5):
        w.add(_row(g, "BTC/USDT", day1 + g))
    for g in range(5, 9):
        w.add(_row(g, "BTC/USDT", day1 + 86_400 * 10**9 + g))
    w.close()
    assert [p[:3] for p in partitions(tmp_path)] == [("sim", "BTC_USDT", "2023-11-14"), ("sim", "BTC_USDT", "2023-11-15")]
    assert [r[1] for r in read_rows(tmp_path)] == list(range(1, 9))
    assert [r[1] for r in read_rows(tmp_path, start_ns=day1 + 86_400 * 10**9)] == list(range(5, 9))


def test_rotation_by_size_makes_segments_while_recording(tmp_path: Path) -> None:
    w = RecordingWriter(tmp_path, "sim", WriterSettings(batch_rows=50, rotate_bytes=8_000)).start()
    for g in range(1, 2001):
        w.add(_row(g))
        if g % 50 == 0:
            assert w.sync(timeout=60)
    w.close()
    (_, _, _, d), = partitions(tmp_path)
    segs = data_files(d)
    assert len(segs) > 2 and all(f.segment for f in segs)
    assert [r[1] for r in read_rows(tmp_path)] == list(range(1, 2001))
    assert w.stats.rows == 2000 and w.stats.dropped_rows == 0


def test_retention_removes_old_days(tmp_path: Path) -> None:
    old = (int(time.time()) - 10 * 86_400) * 10**9
    w = RecordingWriter(tmp_path, "sim", WriterSettings(batch_rows=1)).start()
    w.add(_row(1, ns=old))
    w.close()
    assert len(partitions(tmp_path)) == 1
    w = RecordingWriter(tmp_path, "sim", WriterSettings(batch_rows=1, retention_days=3)).start()
    w.add(_row(2))
    w.close()
    assert [r[1] for r in read_rows(tmp_path)] == [2]


def test_a_quiet_market_is_written_by_age(tmp_path: Path) -> None:
    w = RecordingWriter(tmp_path, "sim", WriterSettings(batch_rows=1000, batch_s=0.05)).start()
    w.add(_row(1))
    deadline = time.monotonic() + 20
    while not files_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert files_of(tmp_path), "the open batch was never written"
    w.close()


def test_not_a_recording_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no recording"):
        list(read_rows(tmp_path))


def _child(tmp_path: Path, mode: str, n: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(CHILD), str(tmp_path / "rec"), mode, str(n)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _kill(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert p.stdout is not None
    p.stdout.close()


def test_sigkill_loses_only_the_open_batch(tmp_path: Path) -> None:
    # 1,050 rows in batches of 200: five closed batches, 50 rows open when the process dies
    p = _child(tmp_path, "pause", 1050)
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "started"
        assert p.stdout.readline().strip() == "added 1050"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the thread writes the full batches, then idles
            if sum(pq.ParquetFile(f).metadata.num_rows for f in files_of(tmp_path / "rec")) >= 1000:
                break
            time.sleep(0.02)
    finally:
        _kill(p)
    got = [r[1] for r in read_rows(tmp_path / "rec")]
    assert got == list(range(1, 1001))  # every closed batch, in order; the open 50 lost


def test_sigkill_mid_write_and_compaction_leaves_readable_files(tmp_path: Path) -> None:
    p = _child(tmp_path, "flat-out", 0)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list((tmp_path / "rec").rglob("seg-*"))) < 3:
            time.sleep(0.005)  # compaction has run several times: now kill it at any moment
    finally:
        _kill(p)
    for f in files_of(tmp_path / "rec"):
        pq.read_table(f)  # every file a reader lists is complete
    got = [r[1] for r in read_rows(tmp_path / "rec")]
    assert got and len(got) == len(set(got)) == len(got), "rows repeated"
    assert got == sorted(got)
    # a batch is one file per partition: killed between two of them, the batch being written is in
    # some partitions and not (yet) in others; nothing older is missing
    holes = sorted(set(range(1, got[-1] + 1)) - set(got))
    assert not holes or got[-1] - holes[0] < 1000, f"rows missing far from the end: {holes[:5]}"
    # a restarted writer cleans the crash's leftovers and the recording reads the same
    RecordingWriter(tmp_path / "rec", "sim").start().close()
    assert not list((tmp_path / "rec").rglob("*.tmp"))
    assert [r[1] for r in read_rows(tmp_path / "rec")] == got
