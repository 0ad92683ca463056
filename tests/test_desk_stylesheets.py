"""The desk's stylesheets are .tcss files beside the code (CSS_PATH): each one a screen or the app
names exists, and pyproject's package data ships it, so a wheel install finds it too."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

from textual.app import App
from textual.screen import Screen

from tps19.desk.app import DeskApp
from tps19.desk.screens.backtest import BacktestScreen
from tps19.desk.screens.confirm import ConfirmScreen, MessageScreen
from tps19.desk.screens.help import HelpScreen
from tps19.desk.screens.history import HistoryScreen
from tps19.desk.screens.logview import LogScreen
from tps19.desk.screens.models import ModelsScreen
from tps19.desk.screens.performance import PerformanceScreen
from tps19.desk.screens.ticket import TicketScreen

ROOT = Path(__file__).resolve().parents[1]
STYLED: tuple[type[App] | type[Screen], ...] = (DeskApp, TicketScreen, ConfirmScreen, MessageScreen, HelpScreen,
                                                BacktestScreen, HistoryScreen, LogScreen, PerformanceScreen,
                                                ModelsScreen)


def _shipped(path: Path) -> bool:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    # Path.glob, like setuptools, does not let "*" cross a folder ("*.tcss" is not "screens/x.tcss").
    return any(path in (ROOT / package.replace(".", "/")).glob(pattern)
               for package, patterns in globs.items() for pattern in patterns)


def test_every_stylesheet_a_screen_names_exists_and_is_package_data() -> None:
    for cls in STYLED:
        assert cls.CSS_PATH, f"{cls.__name__} has no CSS_PATH"
        path = Path(inspect.getfile(cls)).parent / str(cls.CSS_PATH)
        assert path.is_file(), f"{cls.__name__}: {path} missing"
        assert _shipped(path), f"{path.relative_to(ROOT)} is not in [tool.setuptools.package-data]"


def test_no_inline_css_left_in_the_desk() -> None:
    for path in (ROOT / "tps19" / "desk").rglob("*.py"):
        assert "DEFAULT_CSS" not in path.read_text(), f"{path.relative_to(ROOT)} still has inline CSS"


def test_the_built_wheel_ships_every_stylesheet(tmp_path: Path) -> None:
    # An editable install reads the stylesheets from the source tree and would hide one that the
    # package data misses: build the real wheel (offline, from a copy of the sources) and look in it.
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "tps19", src / "tps19", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = out.glob("tps19-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".tcss")}
    in_source = {str(p.relative_to(ROOT)) for p in (ROOT / "tps19").rglob("*.tcss")}
    assert in_source and shipped == in_source
    named = {str((Path(inspect.getfile(cls)).parent / str(cls.CSS_PATH)).relative_to(ROOT)) for cls in STYLED}
    assert named <= shipped
