"""Users and roles of the web application, kept in ``DATA_DIR/users.json`` (never in the RDF graph), their API
tokens, the password policy, and the throttle of failed logins (``DATA_DIR/login-throttle.json``).

Passwords are stored only as werkzeug hashes (scrypt), so nothing queryable through SPARQL ever holds a
password. Each user also has a session *epoch*, a random token that the web app signs into the login cookie; it
changes when the user logs out or gets a new password or role, which ends every session of that user in every
process serving the data folder. Both files are rewritten atomically (a temporary file in the same folder, then
:func:`os.replace`), so a crash leaves either the old or the new content, and every read-modify-write holds an
exclusive ``flock`` on a lock file beside them, so processes sharing the data folder lose no change.

An API token (:meth:`UserStore.create_token`) is shown once and stored only as an HMAC-SHA256 of the token under a
random salt, with its label, creation and expiry time, in the user's entry. A token reads
``sg_<id>_<secret>``: the id finds the entry without trying every hash, the 256-bit secret is what proves it.

    users = UserStore(Path("semgraph-data") / "users.json")
    users.add("alice", "curator", "a long passphrase")
    users.authenticate("alice", "a long passphrase")   # -> User(name='alice', role='curator') or None
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from semgraph.errors import InvalidInput, NotFound, SemgraphError, TooManyRequests
from semgraph.files import write_atomically

#: The roles, from the least to the most privileged. ``admin`` may do everything the others may.
ROLES = ("researcher", "radiologist", "curator", "admin")
#: Shortest accepted password.
MIN_PASSWORD_LENGTH = 10
#: File name of the user list inside the data folder.
USERS_FILE = "users.json"
#: File name of the failed-login counts inside the data folder.
THROTTLE_FILE = "login-throttle.json"
#: Most user names and addresses the throttle file keeps (those with the oldest last failure go first).
THROTTLE_MAX_KEYS = 10_000

#: File of the data folder where ``semgraph demo`` leaves the password of its users (one per role, named after it).
DEMO_PASSWORD_FILE = "demo-password.txt"
#: Prefix of every API token.
TOKEN_PREFIX = "sg_"
#: Longest accepted lifetime of an API token, in days.
MAX_TOKEN_DAYS = 3650

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TOKEN = re.compile(r"sg_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_HASH_METHOD = "scrypt"
# A hash compared against when the user does not exist, so that a wrong name costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("semgraph-no-such-user", method=_HASH_METHOD)


@dataclass(frozen=True)
class User:
    """A user account as the application sees it (without the password hash).

    ``epoch`` is the user's session epoch: a login cookie is valid only while it carries the current one.
    """

    name: str
    role: str
    epoch: str = field(default="", compare=False, repr=False)

    def has_role(self, *roles: str) -> bool:
        """True if the user holds one of ``roles`` (``admin`` holds every role)."""
        return self.role == "admin" or self.role in roles


class InvalidToken(SemgraphError):
    """An API token that is malformed, unknown, revoked or expired (401)."""

    status = 401
    title = "Invalid API token"


@dataclass(frozen=True)
class TokenInfo:
    """What is kept of an API token besides its salted hash: its label and its creation and expiry times (ISO)."""

    label: str
    created: str
    expires: str


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid user name (1–64 characters: letters, digits, ``_ . -``), else raise."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(f"invalid user name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
                           "starting with a letter or digit")
    return name


def validate_role(role: str) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise :class:`InvalidInput` listing them."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of leaked password lists, as the zxcvbn package ships them (lower case)."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, name: str, role: str) -> str:
    """Return ``password`` if the policy accepts it for the user ``name`` with ``role``, else raise
    :class:`InvalidInput` saying why. The policy: at least :data:`MIN_PASSWORD_LENGTH` characters, not one of the
    most common passwords (:func:`_common_passwords`, any case), and more than the user name or the role with digits
    or symbols around them."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if password.lower() in _common_passwords():
        raise InvalidInput("this password is one of the most common passwords, the first that attackers try; "
                           "choose another (a few unrelated words make a strong one)")
    rest = re.sub("|".join(re.escape(word) for word in (name, role) if word), "", password, flags=re.IGNORECASE)
    if not any(ch.isalpha() for ch in rest):
        raise InvalidInput("the password must be more than the user name or the role with digits or symbols "
                           "added; choose another")
    return password


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` while the block runs: one read-modify-write of ``path`` at a
    time, across the threads of this process and every other process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _new_epoch() -> str:
    """A fresh random session epoch."""
    return secrets.token_hex(8)


def _token_digest(salt: str, token: str) -> str:
    """The stored form of an API token: HMAC-SHA256 of the token keyed with its salt (hex)."""
    return hmac.new(bytes.fromhex(salt), token.encode("ascii"), hashlib.sha256).hexdigest()


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


class UserStore:
    """The user list in one JSON file, safe to share between threads and between processes."""

    def __init__(self, path: str | os.PathLike, *, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.clock = clock

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike) -> UserStore:
        """The user list of a data folder (``DATA_DIR/users.json``)."""
        return cls(Path(data_dir) / USERS_FILE)

    # -- reading ---------------------------------------------------------------------------------------
    def _read(self) -> dict[str, dict]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            users = data["users"]
            if not isinstance(users, dict):
                raise TypeError("users is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise SemgraphError(f"the user file {self.path} is damaged ({exc}); restore it from a backup",
                                title="Damaged user file") from exc
        return users

    @staticmethod
    def _user(name: str, entry: dict) -> User:
        return User(name, entry["role"], entry.get("epoch", ""))

    def list(self) -> list[User]:
        """All users, sorted by name."""
        return [self._user(name, entry) for name, entry in sorted(self._read().items())]

    def get(self, name: str) -> User | None:
        """The user ``name``, or None."""
        entry = self._read().get(name)
        return None if entry is None else self._user(name, entry)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (the same work is done for unknown names)."""
        entry = self._read().get(name) if isinstance(name, str) else None
        stored = entry["password"] if entry else _DUMMY_HASH
        ok = check_password_hash(stored, password if isinstance(password, str) else "")
        return self._user(name, entry) if ok and entry else None

    # -- writing ---------------------------------------------------------------------------------------
    def add(self, name: str, role: str, password: str, *, replace: bool = False) -> User:
        """Create the user ``name`` (or, with ``replace``, change its role and password, which ends its sessions).

        The password must pass :func:`check_password`."""
        validate_name(name)
        validate_role(role)
        check_password(password, name, role)
        hashed = generate_password_hash(password, method=_HASH_METHOD)
        with _exclusive(self.path):
            users = self._read()
            if name in users and not replace:
                raise InvalidInput(f"user {name!r} already exists; remove it first or pass replace")
            tokens = users.get(name, {}).get("tokens", {})
            users[name] = {"role": role, "password": hashed, "epoch": _new_epoch(), "tokens": tokens}
            self._write(users)
        return self._user(name, users[name])

    def set_password(self, name: str, password: str) -> User:
        """Give the user ``name`` a new password (it must pass :func:`check_password`), keeping the role and the API
        tokens; every session of the user ends. :class:`NotFound` if there is no such user."""
        user = self.get(name)
        if user is None:
            raise NotFound(f"no user named {name!r}; create it with `semgraph user add {name} --role ROLE`")
        return self.add(name, user.role, password, replace=True)

    # -- API tokens ------------------------------------------------------------------------------------
    def create_token(self, name: str, label: str, days: int) -> str:
        """A new API token for the user ``name``, valid for ``days`` days, labelled ``label`` (unique per user);
        the token itself is returned once and never stored."""
        validate_name(label)
        if not isinstance(days, int) or not 1 <= days <= MAX_TOKEN_DAYS:
            raise InvalidInput(f"a token's lifetime must be 1 to {MAX_TOKEN_DAYS} days, got {days!r}")
        token_id, salt = secrets.token_hex(6), secrets.token_hex(16)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = self.clock()
        with _exclusive(self.path):
            users = self._read()
            if name not in users:
                raise NotFound(f"no user named {name!r}")
            tokens = users[name].setdefault("tokens", {})
            if label in tokens:
                raise InvalidInput(f"user {name} already has a token labelled {label!r}; revoke it first or choose "
                                   "another label")
            tokens[label] = {"id": token_id, "salt": salt, "hmac": _token_digest(salt, token),
                             "created": _iso(now), "expires": _iso(now + days * 86400)}
            self._write(users)
        return token

    def tokens(self, name: str) -> list[TokenInfo]:
        """The API tokens of the user ``name`` (without their hashes), by label."""
        users = self._read()
        if name not in users:
            raise NotFound(f"no user named {name!r}")
        return [TokenInfo(label, entry["created"], entry["expires"])
                for label, entry in sorted(users[name].get("tokens", {}).items())]

    def revoke_token(self, name: str, label: str) -> None:
        """Delete the API token ``label`` of the user ``name``: it stops working at once (:class:`NotFound` if there
        is no such token)."""
        with _exclusive(self.path):
            users = self._read()
            if label not in users.get(name, {}).get("tokens", {}):
                raise NotFound(f"user {name!r} has no token labelled {label!r}")
            del users[name]["tokens"][label]
            self._write(users)

    def authenticate_token(self, token: str) -> User:
        """The user an API token belongs to; :class:`InvalidToken` saying why for a malformed, unknown or revoked,
        or expired token."""
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise InvalidToken("the bearer token is not a semgraph API token (they read sg_..., see "
                               "`semgraph user token`)")
        for name, entry in self._read().items():
            for label, stored in entry.get("tokens", {}).items():
                if stored["id"] == match.group(1) and hmac.compare_digest(stored["hmac"],
                                                                          _token_digest(stored["salt"], token)):
                    if stored["expires"] <= _iso(self.clock()):
                        raise InvalidToken(f"the API token {label!r} of {name} expired at {stored['expires']}; "
                                           "create a new one with `semgraph user token`")
                    return self._user(name, entry)
        raise InvalidToken("the API token is unknown or was revoked; create a new one with `semgraph user token`")

    def end_sessions(self, name: str) -> None:
        """Log out every session of the user ``name`` (a new session epoch); nothing to do for an unknown name."""
        with _exclusive(self.path):
            users = self._read()
            if name in users:
                users[name]["epoch"] = _new_epoch()
                self._write(users)

    def remove(self, name: str) -> None:
        """Delete the user ``name``; :class:`NotFound` if there is no such user."""
        with _exclusive(self.path):
            users = self._read()
            if name not in users:
                raise NotFound(f"no user named {name!r}")
            del users[name]
            self._write(users)

    def _write(self, users: dict[str, dict]) -> None:
        payload = json.dumps({"version": 1, "users": users}, indent=2, sort_keys=True).encode("utf-8")
        write_atomically(self.path, lambda handle: handle.write(payload), durable=True, mode=0o600)


def save_demo_password(data_dir: str | os.PathLike, password: str) -> Path:
    """Write the demo users' password to :data:`DEMO_PASSWORD_FILE` of ``data_dir`` (readable by its owner only)."""
    path = Path(data_dir) / DEMO_PASSWORD_FILE
    payload = (password + "\n").encode("utf-8")
    write_atomically(path, lambda handle: handle.write(payload), durable=True, mode=0o600)
    return path


def demo_password_file(users: UserStore) -> Path | None:
    """The demo password file beside ``users``' list while it exists and a demo user (named after a role) does;
    else None. Pages name the file, never its content."""
    path = users.path.with_name(DEMO_PASSWORD_FILE)
    if not path.is_file() or not any(user.name == user.role and user.name in ROLES for user in users.list()):
        return None
    return path


class LoginThrottle:
    """Failed logins per user name and per client address within a sliding window of ``window`` seconds, counted
    in one JSON file that every process serving the data folder shares.

    Call :meth:`check` before looking at a password: it raises :class:`TooManyRequests` (429 with Retry-After)
    while ``per_user`` failures for the name, or ``per_address`` failures from the address, fall in the window.
    :meth:`failed` counts a wrong password; :meth:`succeeded` clears the name's failures (not the address's). The
    file holds user names, addresses and times, never a tried password. Unknown names are counted like known ones,
    so the answers do not tell which names exist.
    """

    def __init__(self, path: str | os.PathLike, *, per_user: int, per_address: int, window: float,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        #: The file whose lock guards this one too: one lock for the folder's account files (users, failures).
        self.accounts = self.path.with_name(USERS_FILE)
        self.limits = {"user": per_user, "address": per_address}
        self.window = window
        self.clock = clock

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike, **limits) -> LoginThrottle:
        """The throttle of a data folder (``DATA_DIR/login-throttle.json``); ``limits`` as for the constructor."""
        return cls(Path(data_dir) / THROTTLE_FILE, **limits)

    @staticmethod
    def _user_key(name: str) -> str:
        """The file's key of a user name (cut to 100 characters: valid names have at most 64)."""
        return "user:" + name[:100]

    def _keys(self, name: str, address: str) -> dict[str, str]:
        """{kind: key in the file} of a login attempt."""
        return {"user": self._user_key(name), "address": "address:" + address}

    def _read(self, now: float) -> dict[str, list[float]]:
        """{key: times of its failures in the window, oldest first}. A damaged file counts as empty: the counts
        are a brake on guessing, and a file that cannot be read must not lock every user out."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))["failures"]
            since = now - self.window
            kept = {key: [t for t in times if t > since] for key, times in data.items()}
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            return {}
        return {key: times for key, times in kept.items() if times}

    def _write(self, failures: dict[str, list[float]]) -> None:
        if len(failures) > THROTTLE_MAX_KEYS:
            newest = sorted(failures, key=lambda key: failures[key][-1])[-THROTTLE_MAX_KEYS:]
            failures = {key: failures[key] for key in newest}
        payload = json.dumps({"version": 1, "failures": failures}).encode("utf-8")
        write_atomically(self.path, lambda handle: handle.write(payload), mode=0o600)

    def check(self, name: str, address: str) -> None:
        """Raise :class:`TooManyRequests` if a login for ``name`` from ``address`` may not be tried now."""
        now = self.clock()
        failures = self._read(now)
        for kind, key in self._keys(name, address).items():
            times, limit = failures.get(key, []), self.limits[kind]
            if len(times) >= limit:
                wait = times[-limit] + self.window - now
                what = "for this user name" if kind == "user" else "from your address"
                raise TooManyRequests(f"too many failed logins {what} ({limit} in {self.window / 60:g} minutes); "
                                      f"try again in {math.ceil(wait / 60)} minute(s)", retry_after=wait)

    def failed(self, name: str, address: str) -> None:
        """Count a failed login for ``name`` from ``address``."""
        with _exclusive(self.accounts):
            now = self.clock()
            failures = self._read(now)
            for kind, key in self._keys(name, address).items():
                failures[key] = (failures.get(key, []) + [now])[-self.limits[kind]:]
            self._write(failures)

    def succeeded(self, name: str) -> None:
        """Forget the failed logins for ``name`` (a successful login); writes nothing when there are none."""
        key = self._user_key(name)
        if key not in self._read(self.clock()):
            return
        with _exclusive(self.accounts):
            failures = self._read(self.clock())
            if failures.pop(key, None) is not None:
                self._write(failures)
