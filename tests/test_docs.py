"""The README documents every setting and every command, and its two commands are the ones CI runs; docs/settings.md
is the one settings table, generated, and lists every setting the code reads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click

from semgraph.cli import load_commands
from semgraph.config import ALL_SETTINGS, DEFAULT_K, SETTINGS, Config, settings_markdown
from semgraph.config import setting as named
from webapp.settings import WEB_SETTINGS

cli = load_commands()

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI_REFERENCE = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "semgraph") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        paths.extend(command_paths(command, path) if isinstance(command, click.Group) else [path])
    return paths


def test_every_command_is_in_the_cli_reference():
    for path in command_paths(cli):
        assert f"`{path}" in CLI_REFERENCE, f"{path} is not documented in docs/cli.md"


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


# ------------------------------------------------------------------------------------- the one settings table
SETTINGS_DOC = ROOT / "docs" / "settings.md"


def test_settings_doc_is_generated_from_the_table():
    assert SETTINGS_DOC.is_file() and SETTINGS_DOC.read_text(encoding="utf-8") == settings_markdown(), \
        "docs/settings.md is stale: run `python -m semgraph.config docs/settings.md`"
    for s in ALL_SETTINGS:
        assert f"| `{s.name}` |" in settings_markdown() and (s.env is None or f"`{s.env}`" in settings_markdown())


def test_the_table_is_the_only_one():
    names = [s.name for s in ALL_SETTINGS]
    assert len(names) == len(set(names)) and len({s.env for s in ALL_SETTINGS if s.env}) == len(
        [s for s in ALL_SETTINGS if s.env])
    assert {s.name for s in SETTINGS} | {s.name for s in WEB_SETTINGS} <= set(names)
    import webapp.settings

    assert webapp.settings.WEB_SETTINGS is WEB_SETTINGS  # the web app reads the same table
    assert [(f, getattr(Config(), f)) for f in Config.__dataclass_fields__] == [(s.name, s.default) for s in SETTINGS]


def _source_files():
    for package in ("kg", "ontology", "semgraph", "webapp"):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_every_setting_the_code_reads_is_in_the_table():
    envs = {s.env for s in ALL_SETTINGS if s.env}
    names = {s.name for s in ALL_SETTINGS}
    flask_own = {"SESSION_COOKIE_SECURE"}  # set by create_app from SECURE_COOKIES
    for path in _source_files():
        text = path.read_text(encoding="utf-8")
        for env in set(re.findall(r"\bSEMGRAPH_[A-Z_]*[A-Z]\b", text)) | set(
                re.findall(r"(?:environ(?:\.get\(|\[)|getenv\()[\"']([A-Z_]+)[\"']", text)):
            assert env in envs, f"{path.relative_to(ROOT)} reads {env}, which is not in semgraph.config.ALL_SETTINGS"
        for key in set(re.findall(r"config(?:\.get\(|\[)[\"']([A-Z_]+)[\"']", text)) - flask_own:
            assert key in names, f"{path.relative_to(ROOT)} reads app.config[{key!r}], not in ALL_SETTINGS"


def test_the_built_in_limits_are_the_ones_the_code_uses():
    import inspect

    import flask

    from semgraph.cli import query_cmd, text_cmd
    from semgraph.feedback.sessions import start_session
    from semgraph.retrieval.engine import Engine
    from webapp import textsearch
    from webapp import workbench as wb

    assert flask.Flask("x").config["MAX_FORM_MEMORY_SIZE"] == named("MAX_FORM_MEMORY_SIZE").default
    assert (wb.MAX_UPLOAD_BYTES, wb.MAX_UPLOAD_SIDE, wb.MAX_K, textsearch.MAX_K) == tuple(
        named(n).default for n in ("MAX_UPLOAD_BYTES", "MAX_UPLOAD_SIDE", "MAX_K", "MAX_K"))
    # one default k: CLI, web pages, JSON API, library
    defaults = {"query --k": next(p.default for p in query_cmd.query.params if p.name == "k"),
                "search --k": next(p.default for p in text_cmd.search.params if p.name == "k"),
                "web": wb.DEFAULT_K, "text search page": textsearch.DEFAULT_K,
                "Engine.search_case": inspect.signature(Engine.search_case).parameters["k"].default,
                "start_session": inspect.signature(start_session).parameters["k"].default}
    assert set(defaults.values()) == {DEFAULT_K}, defaults


def test_every_public_name_exists():
    """Each package's and module's ``__all__`` names only what it defines or imports."""
    import importlib
    import pkgutil

    for package in ("kg", "ontology", "semgraph", "webapp"):
        root = importlib.import_module(package)
        for info in [None, *pkgutil.walk_packages(root.__path__, package + ".")]:
            module = root if info is None else importlib.import_module(info.name)
            missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
            assert not missing, f"{module.__name__}.__all__ lists {missing}, which it never defines or imports"
