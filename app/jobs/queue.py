"""The Redis connection and RQ queues (only used when REDIS_URL is set)."""
from __future__ import annotations

from functools import lru_cache

from flask import current_app
from redis import Redis
from rq import Queue


@lru_cache(maxsize=4)
def _redis(url: str) -> Redis:
    return Redis.from_url(url)


def get_redis() -> Redis:
    return _redis(current_app.config["REDIS_URL"])


def get_queue(name: str = "default") -> Queue:
    return Queue(name, connection=get_redis())


def all_queues() -> list[Queue]:
    return [get_queue(n) for n in current_app.config["RQ_QUEUES"]]
