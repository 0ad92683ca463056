"""`tps19 COMMAND` builds only COMMAND's area of the command line (tps19/cli/__init__.py): the
command must parse and explain itself exactly as in the whole command line."""

from __future__ import annotations

import re
import subprocess
import sys

from typer.main import get_command
from typer.testing import CliRunner

from tps19 import cli


def _commands(app) -> dict:
    return get_command(app).commands  # type: ignore[attr-defined]


def _r(value) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def _info(command) -> dict:
    """What parses a command line: every parameter's names, type, default, arity; sub-commands."""
    params = [(p.name, tuple(p.opts), tuple(p.secondary_opts), _r(p.type), _r(p.default), p.required,
               p.multiple, p.nargs, getattr(p, "is_flag", None), getattr(p, "count", None)) for p in command.params]
    subs = {n: _info(c) for n, c in getattr(command, "commands", {}).items()}
    return {"params": params, "commands": subs, "help": command.help}


def test_every_command_is_mapped_to_the_area_that_registers_it():
    registered = {name: area for area in cli.AREAS for name in _commands(cli.build_app((area,)))}
    assert registered == cli.AREA_OF
    assert set(_commands(cli.app)) == set(cli.AREA_OF)


def test_a_command_alone_has_the_help_and_options_of_the_whole_command_line():
    runner = CliRunner()
    whole = _commands(cli.app)
    for name, area in cli.AREA_OF.items():
        alone = _commands(cli.build_app((area,)))
        # the same options, arguments and sub-commands
        assert _info(alone[name]) == _info(whole[name]), name
        helped = [runner.invoke(app, [name, "--help"]) for app in (cli.app, cli.build_app((area,)))]
        assert helped[0].exit_code == helped[1].exit_code == 0, name
        assert helped[0].output == helped[1].output, name


def test_the_console_script_runs_a_command_and_still_suggests_for_a_typo(tmp_path):
    run = [sys.executable, "-m", "tps19.cli"]
    listed = subprocess.run([*run, "strategies"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert listed.returncode == 0 and "sma_cross" in listed.stdout, listed.stderr
    typo = subprocess.run([*run, "backtst"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert typo.returncode == 2 and "No such command 'backtst'. Did you mean 'backtest'?" in typo.stderr
