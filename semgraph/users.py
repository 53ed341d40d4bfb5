"""Users and roles of the web application, kept in ``DATA_DIR/users.json`` (never in the RDF graph).

Passwords are stored only as werkzeug hashes (scrypt), so nothing queryable through SPARQL ever holds a
password. The file is rewritten atomically (a temporary file in the same folder, then :func:`os.replace`), so a
crash leaves either the old or the new list of users.

    users = UserStore(Path("semgraph-data") / "users.json")
    users.add("alice", "curator", "a long passphrase")
    users.authenticate("alice", "a long passphrase")   # -> User(name='alice', role='curator') or None
"""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from .errors import InvalidInput, NotFound, SemgraphError
from .files import write_atomically

#: The roles, from the least to the most privileged. ``admin`` may do everything the others may.
ROLES = ("researcher", "radiologist", "curator", "admin")
#: Shortest accepted password.
MIN_PASSWORD_LENGTH = 8
#: File name of the user list inside the data folder.
USERS_FILE = "users.json"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HASH_METHOD = "scrypt"
# A hash compared against when the user does not exist, so that a wrong name costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("semgraph-no-such-user", method=_HASH_METHOD)


@dataclass(frozen=True)
class User:
    """A user account as the application sees it (without the password hash)."""

    name: str
    role: str

    def has_role(self, *roles: str) -> bool:
        """True if the user holds one of ``roles`` (``admin`` holds every role)."""
        return self.role == "admin" or self.role in roles


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


class UserStore:
    """The user list in one JSON file, safe to share between the threads of one process."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()

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

    def list(self) -> list[User]:
        """All users, sorted by name."""
        return [User(name, entry["role"]) for name, entry in sorted(self._read().items())]

    def get(self, name: str) -> User | None:
        """The user ``name``, or None."""
        entry = self._read().get(name)
        return None if entry is None else User(name, entry["role"])

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (the same work is done for unknown names)."""
        entry = self._read().get(name) if isinstance(name, str) else None
        stored = entry["password"] if entry else _DUMMY_HASH
        ok = check_password_hash(stored, password if isinstance(password, str) else "")
        return User(name, entry["role"]) if ok and entry else None

    # -- writing ---------------------------------------------------------------------------------------
    def add(self, name: str, role: str, password: str, *, replace: bool = False) -> User:
        """Create the user ``name`` (or, with ``replace``, change its role and password)."""
        validate_name(name)
        validate_role(role)
        if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        hashed = generate_password_hash(password, method=_HASH_METHOD)
        with self._lock:
            users = self._read()
            if name in users and not replace:
                raise InvalidInput(f"user {name!r} already exists; remove it first or pass replace")
            users[name] = {"role": role, "password": hashed}
            self._write(users)
        return User(name, role)

    def remove(self, name: str) -> None:
        """Delete the user ``name``; :class:`NotFound` if there is no such user."""
        with self._lock:
            users = self._read()
            if name not in users:
                raise NotFound(f"no user named {name!r}")
            del users[name]
            self._write(users)

    def _write(self, users: dict[str, dict]) -> None:
        payload = json.dumps({"version": 1, "users": users}, indent=2, sort_keys=True).encode("utf-8")
        write_atomically(self.path, lambda handle: handle.write(payload), durable=True, mode=0o600)
