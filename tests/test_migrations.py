"""The schema comes from Alembic alone: upgrade from empty, downgrade to base and up again on the
engine under test, and no model change is missing a migration."""
from __future__ import annotations

import re
import subprocess

from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from conftest import ROOT, flask_cmd, subprocess_env
from freshdb import fresh_database, sqlalchemy_url


def db_command(database_url: str, instance, *args: str) -> subprocess.CompletedProcess:
    env = subprocess_env(DATABASE_URL=database_url, CRM_INSTANCE_DIR=str(instance))
    proc = subprocess.run(flask_cmd("db", *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"flask db {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return proc


def schema_diff(engine) -> list:
    from flask_appbuilder import Model

    import app.models  # noqa: F401  (every model on FAB's metadata)

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Model.metadata)


def test_upgrade_downgrade_upgrade_and_no_missing_migration(tmp_path):
    from flask_appbuilder import Model

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with fresh_database(tmp_path) as url:
        engine = create_engine(sqlalchemy_url(url))
        try:
            assert set(inspect(engine).get_table_names()) == set()

            db_command(url, tmp_path / "instance", "upgrade")
            tables = set(inspect(engine).get_table_names())
            assert set(Model.metadata.tables) <= tables
            with engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
            diff = schema_diff(engine)
            assert diff == [], f"models changed without a migration (flask db migrate): {diff}"

            db_command(url, tmp_path / "instance", "downgrade", "base")
            engine.dispose()
            assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

            db_command(url, tmp_path / "instance", "upgrade")
            engine.dispose()
            assert set(Model.metadata.tables) <= set(inspect(engine).get_table_names())
            assert schema_diff(engine) == []
        finally:
            engine.dispose()


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return cfg


def test_no_product_code_creates_tables_behind_alembic():
    offenders = []
    for path in [ROOT / "run.py", ROOT / "config.py", *(ROOT / "app").rglob("*.py"), *(ROOT / "migrations").rglob("*.py")]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bcreate_all\s*\(", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
