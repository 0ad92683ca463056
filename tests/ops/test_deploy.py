"""deploy/tps19.service: the headless engine as a non-root service that restarts on failure."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "tps19.service"


def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(UNIT.read_text().replace("\\\n", " "))
    return cp


def test_the_unit_runs_headless_as_a_non_root_user_and_restarts_on_failure():
    svc = _unit()["Service"]
    assert svc["User"] not in ("", "root") and svc["Group"] not in ("", "root")
    assert svc["Restart"] == "on-failure"
    argv = shlex.split(svc["ExecStart"])
    assert argv[1] in ("paper", "live") and "--no-ui" in argv and "--metrics-port" in argv
    assert svc["EnvironmentFile"].startswith("/etc/")
    assert svc["KillSignal"] == "SIGTERM"


def test_the_unit_passes_systemd_analyze_except_for_the_absent_install():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    r = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and "is not executable" not in l]
    assert not problems, problems


def test_the_unit_flags_are_flags_tps19_paper_takes():
    from typer.testing import CliRunner

    from tps19.cli import app

    help_text = CliRunner().invoke(app, ["paper", "--help"], env={"COLUMNS": "200"}).output
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    for flag in (a for a in argv[2:] if a.startswith("--")):
        assert flag in help_text, flag
