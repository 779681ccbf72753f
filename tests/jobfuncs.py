"""Test-only job functions, importable by the RQ worker subprocess as ``tests.jobfuncs:<name>``
(its cwd is the repository root, which `flask --app run` puts on sys.path).

Each one appends a line to a file named in its arguments, so a test can count how many times
the work really happened, in which process and as which user.
"""
from __future__ import annotations

import os
import time

from flask import g


def _note(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def probe(path: str, tag: str) -> dict:
    user = g.user.username if getattr(g, "user", None) is not None else None
    _note(path, f"{tag} {user} {os.getpid()}")
    return {"tag": tag, "user": user, "pid": os.getpid()}


def boom(path: str) -> None:
    _note(path, f"{time.time():.3f}")
    raise RuntimeError("boom: probe job failed on purpose")


def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds
