"""`semgraph user` and `semgraph serve` options, through click's CliRunner."""

from __future__ import annotations

import json
import re

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
    (["user", "add", "bob", "--role", "curator", "--password-stdin"], "short-pw1\n", "at least 10"),
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


def test_queue_warnings_are_throttled_to_one_per_interval():
    import logging

    from webapp.serving import EverySeconds

    now = [100.0]
    throttle = EverySeconds(interval=10, clock=lambda: now[0])

    def warn() -> logging.LogRecord | None:
        record = logging.LogRecord("waitress.queue", logging.WARNING, __file__, 1, "Task queue depth is %d", (3,),
                                   None)
        return record if throttle.filter(record) else None

    assert warn().getMessage() == "Task queue depth is 3"
    for step in (1, 2, 9.5):  # 100 + 9.5 is still within the 10 s
        now[0] = 100 + step
        assert warn() is None
    now[0] = 112.0
    assert warn().getMessage() == "Task queue depth is 3 (3 more such warnings in the last 12 s)"
    now[0] = 113.0
    assert warn() is None


def test_a_loaded_server_logs_few_queue_warnings_and_answers_everything(tmp_path):
    """40 concurrent requests on one worker thread: all answered, at most a line or two about the queue.

    Waitress writes one warning per queued request while holding its dispatcher lock; when the server's stderr is a
    pipe nobody reads (a service manager's, a test's), those lines used to fill the pipe and stop the server.
    """
    import subprocess
    import sys
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    log = tmp_path / "server.log"
    with open(log, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", "from semgraph.cli import main; main()", "--data-dir", str(tmp_path / "data"),
             "serve", "--port", "0", "--threads", "1"],
            stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", process.stdout.readline()).group(0) + "api/v1/status"

        def get(_: int) -> int:
            with urllib.request.urlopen(url, timeout=60) as response:
                return response.status

        with ThreadPoolExecutor(40) as pool:
            codes = list(pool.map(get, range(40)))
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert codes == [200] * 40
    assert log.read_text().count("Task queue depth") <= 2, log.read_text()
