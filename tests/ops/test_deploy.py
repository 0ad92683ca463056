"""deploy/: the headless engine (tps19.service) and the browser desk (tps19-serve.service) as
non-root services that restart on failure, with their secrets in an env file."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "tps19.service"
SERVE_UNIT = ROOT / "deploy" / "tps19-serve.service"


def _unit(path: Path = UNIT) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string(path.read_text().replace("\\\n", " "))
    return cp


def test_the_unit_runs_headless_as_a_non_root_user_and_restarts_on_failure():
    svc = _unit()["Service"]
    assert svc["User"] not in ("", "root") and svc["Group"] not in ("", "root")
    assert svc["Restart"] == "on-failure"
    argv = shlex.split(svc["ExecStart"])
    assert argv[1] in ("paper", "live") and "--no-ui" in argv and "--metrics-port" in argv
    assert svc["EnvironmentFile"].startswith("/etc/")
    assert svc["KillSignal"] == "SIGTERM"


@pytest.mark.parametrize("unit", [UNIT, SERVE_UNIT], ids=lambda p: p.name)
def test_the_unit_passes_systemd_analyze_except_for_the_absent_install(unit):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and "is not executable" not in l]
    assert not problems, problems


def test_the_unit_flags_are_flags_tps19_paper_takes():
    from typer.testing import CliRunner

    from tps19.cli import app

    help_text = CliRunner().invoke(app, ["paper", "--help"], env={"COLUMNS": "200"}).output
    argv = shlex.split(_unit()["Service"]["ExecStart"])
    for flag in (a for a in argv[2:] if a.startswith("--")):
        assert flag in help_text, flag


def test_the_serve_unit_listens_on_loopback_behind_a_proxy_with_its_secrets_in_the_env_file():
    from typer.testing import CliRunner

    from tps19.cli import app

    svc = _unit(SERVE_UNIT)["Service"]
    assert svc["User"] not in ("", "root") and svc["Restart"] == "on-failure"
    assert svc["EnvironmentFile"].startswith("/etc/") and svc["KillSignal"] == "SIGTERM"
    argv = shlex.split(svc["ExecStart"])
    assert argv[1] == "serve" and argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--public-url") + 1].startswith("https://")
    assert not any("PASSWORD" in a or "postgresql" in a for a in argv)
    help_text = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    for flag in (a for a in argv[2:] if a.startswith("--")):
        assert flag in help_text, flag
