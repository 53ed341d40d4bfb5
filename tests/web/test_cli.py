"""`semgraph user` and `semgraph serve` options, through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from semgraph.cli import load_commands
from semgraph.users import UserStore


@pytest.fixture
def run(tmp_path):
    cli = load_commands()

    def invoke(*args, input=None):
        return CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args], input=input)

    return invoke


def test_user_add_from_stdin_then_list_and_remove(run, tmp_path):
    result = run("user", "add", "alice", "--role", "curator", "--password-stdin", input="correct horse\n")
    assert result.exit_code == 0, result.output
    assert UserStore.in_data_dir(tmp_path).authenticate("alice", "correct horse").role == "curator"
    assert run("user", "list").output.splitlines() == ["alice\tcurator"]
    stored = (tmp_path / "users.json").read_text()
    assert "correct horse" not in stored
    assert json.loads(stored)["users"]["alice"]["password"].startswith("scrypt:")
    assert run("user", "remove", "alice").exit_code == 0
    assert UserStore.in_data_dir(tmp_path).get("alice") is None


def test_user_add_prompts_twice(run, tmp_path):
    result = run("user", "add", "bob", "--role", "radiologist", input="secret-pass\nsecret-pass\n")
    assert result.exit_code == 0, result.output
    assert UserStore.in_data_dir(tmp_path).authenticate("bob", "secret-pass") is not None


def test_user_add_mismatched_confirmation_writes_nothing(run, tmp_path):
    result = run("user", "add", "bob", "--role", "radiologist", input="secret-pass\nother-pass\n")
    assert result.exit_code != 0
    assert not (tmp_path / "users.json").exists()


@pytest.mark.parametrize("args,stdin,message", [
    (["user", "add", "bob", "--role", "king", "--password-stdin"], "secret-pass\n", "king"),
    (["user", "add", "bob", "--role", "curator", "--password-stdin"], "short\n", "at least 8"),
    (["user", "add", "bad name", "--role", "curator", "--password-stdin"], "secret-pass\n", "invalid user name"),
    (["user", "remove", "ghost"], None, "no user named 'ghost'"),
])
def test_user_errors_are_one_line_and_write_nothing(run, tmp_path, args, stdin, message):
    result = run(*args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "users.json").exists()


def test_user_add_twice_needs_replace(run, tmp_path):
    run("user", "add", "carol", "--role", "researcher", "--password-stdin", input="first-pass\n")
    again = run("user", "add", "carol", "--role", "admin", "--password-stdin", input="second-pass\n")
    assert again.exit_code != 0 and "already exists" in again.output
    replaced = run("user", "add", "carol", "--role", "admin", "--password-stdin", "--replace", input="second-pass\n")
    assert replaced.exit_code == 0
    assert UserStore.in_data_dir(tmp_path).authenticate("carol", "second-pass").role == "admin"
    assert UserStore.in_data_dir(tmp_path).authenticate("carol", "first-pass") is None


def test_serve_help_lists_its_options(run):
    result = run("serve", "--help")
    assert result.exit_code == 0
    for option in ("--host", "--port", "--threads"):
        assert option in result.output


def test_serve_runs_and_prints_the_url(tmp_path):
    import re
    import subprocess
    import sys
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-c", "from semgraph.cli import main; main()", "--data-dir", str(tmp_path),
         "serve", "--port", "0", "--threads", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + process.stderr.read()
        with urllib.request.urlopen(match.group(0) + "api/v1/status", timeout=30) as response:
            status = json.loads(response.read())
        assert status["store"]["location"] == str(tmp_path / "graph")
    finally:
        process.terminate()
        process.wait(timeout=30)
