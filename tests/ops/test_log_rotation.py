"""`--log-file` rotation by size (TPS19_LOG__MAX_BYTES, TPS19_LOG__BACKUPS): no line lost or split."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

from tps19.engine.jsonlog import JsonLines


def _files(log: Path) -> list[Path]:
    return sorted(log.parent.glob(log.name + "*"))


def test_lines_written_by_many_threads_across_many_rotations_are_all_kept_whole(tmp_path):
    log = tmp_path / "desk.jsonl"
    out = JsonLines(log, max_bytes=4_000, backups=100)
    writers, per_writer = 4, 400

    def write(w: int) -> None:
        for i in range(per_writer):
            out.write("market", writer=w, i=i, pad="x" * (i % 50))

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()

    files = _files(log)
    assert out.rotations >= 10 and len(files) == out.rotations + 1
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]  # every line parses
    assert sorted((r["writer"], r["i"]) for r in records) == [(w, i) for w in range(writers) for i in range(per_writer)]
    assert all(f.stat().st_size <= 4_000 for f in files)
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    # F.1 is the newest rotated file, the highest number the oldest: the order of lines is kept
    for w in range(writers):
        seq = [r["i"] for f in sorted(files, key=lambda f: -int(f.suffix[1:]) if f.suffix[1:].isdigit() else 0)
               for r in map(json.loads, f.read_text().splitlines()) if r["writer"] == w]
        assert seq == list(range(per_writer))


def test_only_the_kept_count_of_rotated_files_remains_and_the_newest_lines_are_in_them(tmp_path):
    log = tmp_path / "desk.jsonl"
    out = JsonLines(log, max_bytes=1_000, backups=2)
    for i in range(500):
        out.write("market", i=i)
    out.close()
    assert [f.name for f in _files(log)] == ["desk.jsonl", "desk.jsonl.1", "desk.jsonl.2"]
    kept = [json.loads(line)["i"] for f in (log.with_name("desk.jsonl.2"), log.with_name("desk.jsonl.1"), log)
            for line in f.read_text().splitlines()]
    assert kept == list(range(kept[0], 500))  # contiguous up to the last line written


def test_a_log_reopened_after_a_restart_rotates_by_its_existing_size(tmp_path):
    log = tmp_path / "desk.jsonl"
    log.write_text('{"event":"old"}\n' * 100)  # 1,600 bytes from the previous run
    out = JsonLines(log, max_bytes=2_000, backups=3)
    for i in range(40):
        out.write("market", i=i)
    out.close()
    assert out.rotations >= 1
    assert log.with_name("desk.jsonl.1").read_text().startswith('{"event":"old"}')
