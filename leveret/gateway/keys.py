"""API keys: roles, the keys file, and the ring that checks a presented key. No HTTP here, so
that `leveret keys` runs without loading the web framework."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from leveret.jobs.errors import ConfigurationError

log = logging.getLogger(__name__)

KEY_PREFIX = "lvk_"
"""What every Leveret API key starts with, so a leaked one is recognisable in a scan."""

RELOAD_INTERVAL = 1.0
"""Seconds between two checks of whether the keys file changed."""

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_LINE_FORMAT = "expected '<sha256-hex> <name> <role>'"


class Role(StrEnum):
    """What an API key may do; each role may do everything the ones below it may."""

    VIEWER = "viewer"  # read jobs, queues, schedules
    OPERATOR = "operator"  # also submit, cancel, retry, and work the DLQ
    ADMIN = "admin"  # everything

    def allows(self, needed: Role) -> bool:
        """Whether a key with this role may do what needs `needed`."""
        return _RANKS[self] >= _RANKS[needed]

    @classmethod
    def parse(cls, value: str) -> Role:
        """The role named `value`; ConfigurationError if there is none."""
        try:
            return cls(value)
        except ValueError:
            raise ConfigurationError(
                f"unknown role {value!r}: use {', '.join(r.value for r in cls)}"
            ) from None


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def new_key() -> str:
    """A fresh random API key in plaintext."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    """The hex digest under which `key` is stored."""
    # Keys carry 256 random bits, so nobody can guess one from its hash however fast the hash
    # is: a slow password hash (bcrypt, argon2) would only slow every request down.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One entry of the keys file: who holds the key, what it may do, and its hash."""

    name: str
    """Who or what holds the key; unique in its file."""
    role: Role
    """What the key may do."""
    digest: str = field(repr=False)
    """sha256 hex of the key; the key itself is never stored."""

    @property
    def id(self) -> str:
        """A short, non-secret identifier of the key (the first 8 hex chars of its hash)."""
        return self.digest[:8]


class KeyFile:
    """The file of hashed API keys: one `<sha256-hex> <name> <role>` line per key; blank
    lines and `#` comments allowed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> list[ApiKey]:
        """Every key in the file; ConfigurationError if it is missing or a line is malformed."""
        return [key for _, key in self._entries(self._lines())]

    def add(self, name: str, role: Role | str) -> str:
        """Store a new key for `name` and return it in plaintext: the only time it exists."""
        if not _NAME.fullmatch(name):
            raise ConfigurationError(f"key name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
        role = Role.parse(role)
        lines = self._lines() if self.path.exists() else []
        if any(key.name == name for _, key in self._entries(lines)):
            raise ConfigurationError(f"{self.path}: a key named {name!r} already exists")
        key = new_key()
        self._write([*lines, f"{digest(key)} {name} {role.value}"])
        return key

    def revoke(self, name: str) -> bool:
        """Remove the key named `name`; False if there is none."""
        if not self.path.exists():
            return False
        lines = self._lines()
        doomed = {index for index, key in self._entries(lines) if key.name == name}
        if doomed:
            self._write([line for index, line in enumerate(lines) if index not in doomed])
        return bool(doomed)

    def stamp(self) -> tuple[int, int, int]:
        """What changes when the file does: its mtime, size and inode."""
        # The inode catches a rename over the file, the size an edit within the mtime's
        # resolution.
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise self._missing() from None
        except OSError as exc:
            raise self._unreadable(exc.strerror or str(exc)) from None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _lines(self) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise self._missing() from None
        except OSError as exc:
            raise self._unreadable(exc.strerror or str(exc)) from None
        except UnicodeDecodeError:
            raise self._unreadable("not UTF-8 text") from None

    def _missing(self) -> ConfigurationError:
        return ConfigurationError(
            f"API keys file {self.path} does not exist; create it with `leveret keys add`"
        )

    def _unreadable(self, reason: str) -> ConfigurationError:
        return ConfigurationError(f"cannot read API keys file {self.path}: {reason}")

    def _entries(self, lines: list[str]) -> list[tuple[int, ApiKey]]:
        entries: list[tuple[int, ApiKey]] = []
        names: set[str] = set()
        for index, line in enumerate(lines):
            key = self._parse(index + 1, line)
            if key is None:
                continue
            if key.name in names:
                raise ConfigurationError(
                    f"{self.path}:{index + 1}: a second key named {key.name!r}"
                )
            names.add(key.name)
            entries.append((index, key))
        return entries

    def _parse(self, lineno: int, line: str) -> ApiKey | None:
        # Messages name the fault but never the field's text: a hash, or a key pasted where a
        # hash belongs, would end up in logs and terminals.
        text = line.strip()
        if not text or text.startswith("#"):
            return None
        fields = text.split()
        where = f"{self.path}:{lineno}"
        if len(fields) != 3:
            raise ConfigurationError(f"{where}: {len(fields)} fields, {_LINE_FORMAT}")
        hexdigest, name, role = fields
        if not _DIGEST.fullmatch(hexdigest):
            raise ConfigurationError(f"{where}: the first field is not a sha256 hex digest")
        if not _NAME.fullmatch(name):
            raise ConfigurationError(f"{where}: the name must be 1-64 of A-Z a-z 0-9 _ . -")
        if role not in {r.value for r in Role}:
            roles = ", ".join(r.value for r in Role)
            raise ConfigurationError(f"{where}: the role must be one of {roles}")
        return ApiKey(name=name, role=Role(role), digest=hexdigest)

    def _write(self, lines: list[str]) -> None:
        # Write a sibling and rename it over the file, so that a gateway reloading the file
        # never reads half of it. An existing file keeps its mode; a new one is owner-only.
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o600
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), mode)
                out.write("".join(f"{line}\n" for line in lines))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


class KeyRing:
    """The keys a gateway accepts, reloaded when the keys file changes; no file means an
    open API."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._file = None if path is None else KeyFile(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: tuple[ApiKey, ...] = ()
        self._signature: tuple[int, int, int] | None = None
        self._checked = clock()
        if self._file is not None:
            # Loaded now so that a missing or broken file stops the gateway at start-up.
            self._signature = self._file.stamp()
            self._keys = tuple(self._file.load())

    @property
    def open(self) -> bool:
        """Whether no keys file is configured, so every request is allowed."""
        return self._file is None

    @property
    def keys(self) -> tuple[ApiKey, ...]:
        """The keys accepted right now (after a reload if the file changed)."""
        self._refresh()
        return self._keys

    def authenticate(self, presented: str) -> ApiKey | None:
        """The key entry matching `presented`, or None."""
        candidate = digest(presented)
        found: ApiKey | None = None
        # Compare against every entry, in constant time, so that the answer's timing says
        # nothing about which or how many digests are near the presented one.
        for key in self.keys:
            if hmac.compare_digest(candidate, key.digest) and found is None:
                found = key
        return found

    def _refresh(self) -> None:
        if self._file is None:
            return
        with self._lock:
            now = self._clock()
            if now - self._checked < RELOAD_INTERVAL:
                return
            self._checked = now
            try:
                signature = self._file.stamp()
                if signature == self._signature:
                    return
                keys = tuple(self._file.load())
            except ConfigurationError as exc:
                # A file caught mid-edit or broken by hand must not lock everyone out: keep the
                # keys last read and say why, and look again on the next check.
                log.error("keeping the previous API keys: %s", exc)
                return
            self._keys, self._signature = keys, signature
            log.info("reloaded %d API key(s) from %s", len(keys), self._file.path)
