"""docs/cli.md documents every command; docs/settings.md is the one settings table (generated from
semgraph.config.ALL_SETTINGS, current, listing every setting the code reads, each with its default) and the README
links to it instead of repeating it; the README's test command is the one CI runs."""

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
SETTINGS_DOC = ROOT / "docs" / "settings.md"
SETTINGS_DOC_TEXT = SETTINGS_DOC.read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "semgraph") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        paths.extend(command_paths(command, path) if isinstance(command, click.Group) else [path])
    return paths


def test_every_command_is_in_the_cli_reference():
    for path in command_paths(cli):
        assert f"`{path}" in CLI_REFERENCE, f"{path} is not documented in docs/cli.md"


def _settings_doc_row(name: str) -> re.Match | None:
    """The row of setting ``name`` in docs/settings.md: environment variable and default cells."""
    return re.search(rf"^\| `{re.escape(name)}` \| (.+?) \| (.+?) \|", SETTINGS_DOC_TEXT, re.MULTILINE)


def test_every_setting_is_in_the_settings_doc_with_its_default():
    for setting in ALL_SETTINGS:
        row = _settings_doc_row(setting.name)
        assert row, f"{setting.name} has no row in docs/settings.md"
        env, shown = row.group(1), row.group(2).strip("`")
        assert env == (f"`{setting.env}`" if setting.env else "—"), (setting.name, env)
        default = setting.default
        expected = ({True: "on", False: "off"}[default] if isinstance(default, bool)
                    else f"{default:g}" if isinstance(default, float) else str(default) or "(empty)")
        assert shown == expected, (setting.name, shown, expected)


def test_the_readme_links_to_the_settings_doc_and_repeats_no_setting_table():
    assert "](docs/settings.md)" in README
    names = {s.name for s in ALL_SETTINGS} | {s.env for s in ALL_SETTINGS if s.env}
    rows = [m.group(0) for m in re.finditer(r"^\|\s*`([^`]+)`\s*\|.*$", README, re.MULTILINE)
            if m.group(1) in names]
    assert not rows, f"the README repeats settings rows; they belong in docs/settings.md only: {rows[:3]}"


def test_ci_runs_the_readme_test_command():
    block = re.search(r"<!-- test-command -->\s*```sh\n(.+?)\n```", README, re.S).group(1)
    assert "pytest" in block
    extracted = subprocess.run(
        ["awk", '/<!-- test-command -->/ {found=1; next} found && /^```/ {if (inblock) exit; inblock=1; next} '
                'inblock {print}', str(ROOT / "README.md")], capture_output=True, text=True).stdout.strip()
    assert extracted == block
    assert "awk" in (ROOT / ".ci" / "run").read_text() and "-eq 5" in (ROOT / ".ci" / "run").read_text()


# ------------------------------------------------------------------------------------- the one settings table
def test_settings_doc_is_generated_from_the_table():
    assert SETTINGS_DOC_TEXT == settings_markdown(), \
        "docs/settings.md is stale: run `python -m semgraph.config docs/settings.md`"


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
    from webapp import params, textsearch, uploads

    assert flask.Flask("x").config["MAX_FORM_MEMORY_SIZE"] == named("MAX_FORM_MEMORY_SIZE").default
    assert (uploads.MAX_UPLOAD_BYTES, uploads.MAX_UPLOAD_SIDE, params.MAX_K, textsearch.MAX_K) == tuple(
        named(n).default for n in ("MAX_UPLOAD_BYTES", "MAX_UPLOAD_SIDE", "MAX_K", "MAX_K"))
    # one default k: CLI, web pages, JSON API, library
    defaults = {"query --k": next(p.default for p in query_cmd.query.params if p.name == "k"),
                "search --k": next(p.default for p in text_cmd.search.params if p.name == "k"),
                "web": inspect.signature(params.parse_k).parameters["default"].default,
                "text search page": textsearch.DEFAULT_K,
                "Engine.search_case": inspect.signature(Engine.search_case).parameters["k"].default,
                "start_session": inspect.signature(start_session).parameters["k"].default}
    assert set(defaults.values()) == {DEFAULT_K}, defaults
    # one largest image side for the library's loaders and feature extraction
    from semgraph import imaging
    from semgraph.imaging import _checks

    sides = {"DEFAULT_MAX_SIZE": imaging.DEFAULT_MAX_SIZE,
             **{f.__name__: inspect.signature(f).parameters["max_size"].default
                for f in (imaging.load_image, imaging.mask_from_file, _checks.check_image)}}
    assert set(sides.values()) == {named("MAX_IMAGE_SIDE").default}, sides


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
