"""Errors about files the user hands over (target lists, opt-out lists, alert rules, owners, leak samples).

Such a file may be anything (a secrets file passed by mistake, a leak written by an attacker): an error names
the file, the line and what is wrong, and never echoes what the file holds.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """A file cannot be used: one line, `PATH: line N: reason` (the line when it is known)."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        where = f"{path}: line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path, self.line, self.reason = str(path), line, reason


_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)$")


def load_toml(path: str | Path) -> dict[str, Any]:
    """The TOML file at `path`. Raises InputError: a syntax error names its line and column, not the text."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(path, None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        at = _TOML_AT.search(str(exc))
        if at is None:
            raise InputError(path, None, "invalid TOML (it ends early)") from None
        raise InputError(path, int(at[1]), f"invalid TOML at column {at[2]}") from None


STAMP_BYTES = 65536
"""Bytes at the head of a file that its stamp hashes."""


def file_stamp(path: str | Path) -> dict[str, Any]:
    """What tells whether the file at `path` changed: its size, modification time (ns) and a SHA-256 of its
    first STAMP_BYTES bytes. Raises OSError."""
    with open(path, "rb") as handle:
        head = hashlib.sha256(handle.read(STAMP_BYTES)).hexdigest()
        status = os.fstat(handle.fileno())
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "head_sha256": head}
