"""Periodic jobs without Redis: a daemon thread in `python run.py` runs each job once per slot."""
from __future__ import annotations

import logging
import threading
import time

from flask import Flask

log = logging.getLogger(__name__)


def tick(app: Flask, done: dict[str, str]) -> None:
    from app.jobs import PERIODIC
    from app.jobs.runner import execute, slot_key

    for job in PERIODIC.values():
        key = slot_key(job.interval)
        if done.get(job.name) == key:
            continue
        with app.app_context():
            try:
                execute(job.func, key, [], mode="inline")
            except Exception:  # logged and recorded by execute; try again next slot
                pass
        done[job.name] = key


def start_inline_scheduler(app: Flask, every: float = 30.0) -> threading.Thread:
    def loop() -> None:
        done: dict[str, str] = {}
        while True:
            tick(app, done)
            time.sleep(every)

    thread = threading.Thread(target=loop, name="crm-inline-scheduler", daemon=True)
    thread.start()
    return thread
