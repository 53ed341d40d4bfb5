"""The README documents every setting and every command, and its two commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click

from semgraph.cli import load_commands
from semgraph.config import SETTINGS
from webapp.settings import WEB_SETTINGS

cli = load_commands()

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "semgraph") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        paths.extend(command_paths(command, path) if isinstance(command, click.Group) else [path])
    return paths


def test_every_command_is_in_the_readme():
    for path in command_paths(cli):
        assert f"`{path}" in README, f"{path} is not documented in README.md"


def test_every_setting_is_in_the_readme():
    for setting in SETTINGS:
        assert f"`{setting.name}`" in README and f"`{setting.env}`" in README, setting.name


def test_every_web_setting_is_in_the_readme_with_its_default():
    for setting in WEB_SETTINGS:
        row = re.search(rf"^\| `SEMGRAPH_{setting.name}` \| (.+?) \|", README, re.M)
        assert row, f"SEMGRAPH_{setting.name} has no row in the README's web settings table"
        shown = row.group(1).strip("`")
        expected = {True: "on", False: "off"}.get(setting.default, setting.default) if isinstance(
            setting.default, bool) else setting.default
        assert shown == (f"{expected:g}" if isinstance(expected, float) else str(expected) or "(empty)"), \
            (setting.name, shown)


def test_ci_runs_the_readme_test_command():
    block = re.search(r"<!-- test-command -->\s*```sh\n(.+?)\n```", README, re.S).group(1)
    assert "pytest" in block
    extracted = subprocess.run(
        ["awk", '/<!-- test-command -->/ {found=1; next} found && /^```/ {if (inblock) exit; inblock=1; next} '
                'inblock {print}', str(ROOT / "README.md")], capture_output=True, text=True).stdout.strip()
    assert extracted == block
    assert "awk" in (ROOT / ".ci" / "run").read_text() and "-eq 5" in (ROOT / ".ci" / "run").read_text()
