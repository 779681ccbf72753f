"""An empty database on the engine under test (CRM_TEST_ENGINE), for migrations and first start."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ENGINE = os.environ.get("CRM_TEST_ENGINE", "sqlite")


@contextmanager
def fresh_database(tmp: Path) -> Iterator[str]:
    """Yields a DATABASE_URL naming an empty database; a PostgreSQL one is dropped afterwards."""
    if ENGINE != "postgresql":
        yield f"sqlite:///{tmp / 'fresh.db'}"
        return
    import psycopg

    admin_url = os.environ.get("CRM_TEST_ADMIN_URL", "postgresql://crm_test:crm_test@127.0.0.1:5432/postgres")
    name = f"crm_fresh_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlalchemy_url(database_url: str) -> str:
    return database_url.replace("postgresql://", "postgresql+psycopg://", 1)
