"""The desk's stylesheets are .tcss files beside the code (CSS_PATH): each one a screen or the app
names exists, and pyproject's package data ships it, so a wheel install finds it too."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

from textual.app import App
from textual.screen import Screen

from tps19.app import DeskApp
from tps19.screens.backtest import BacktestScreen
from tps19.screens.confirm import ConfirmScreen, MessageScreen
from tps19.screens.help import HelpScreen
from tps19.screens.history import HistoryScreen
from tps19.screens.logview import LogScreen
from tps19.screens.models import ModelsScreen
from tps19.screens.performance import PerformanceScreen
from tps19.screens.ticket import TicketScreen

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
    for folder in ("screens", "widgets"):
        for path in (ROOT / "tps19" / folder).glob("*.py"):
            assert "DEFAULT_CSS" not in path.read_text(), f"{path.relative_to(ROOT)} still has inline CSS"
    assert "DEFAULT_CSS" not in (ROOT / "tps19" / "app.py").read_text()
