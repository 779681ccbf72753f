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


def test_trigram_migration_gives_existing_customers_the_tokens_a_new_one_gets(tmp_path):
    """Customers saved before the initials trigrams (ff222b9695d4) get them on upgrade, the same
    set name_tokens makes for a customer saved now; downgrade takes them away again."""
    from app.services.search_keys import name_tokens

    name, initials = "华星星华星科技", "hxxhxkj"  # a repeated piece (hxx... hx) is one token
    with fresh_database(tmp_path) as url:
        engine = create_engine(sqlalchemy_url(url))
        try:
            db_command(url, tmp_path / "instance", "upgrade", "5bae2b2accad")
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO ab_user (id, first_name, last_name, username, email, active) "
                                  "VALUES (1, 'a', 'b', 'u', 'u@example.com', true)"))
                conn.execute(text("INSERT INTO crm_customer (id, customer_no, name, name_initials, archived, created_on,"
                                  " changed_on, created_by_fk, changed_by_fk) VALUES (7, 'C1', :n, :i, false,"
                                  " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 1)"), {"n": name, "i": initials})
                conn.execute(text("INSERT INTO crm_customer_token (token, customer_id) VALUES (:t, 7)"),
                             [{"t": t} for t in name_tokens(name, initials) if len(t) < 4])

            def tokens() -> set[str]:
                engine.dispose()
                with engine.connect() as conn:
                    return set(conn.execute(text("SELECT token FROM crm_customer_token WHERE customer_id = 7")).scalars())

            db_command(url, tmp_path / "instance", "upgrade")
            assert tokens() == name_tokens(name, initials)
            assert {"^hxx", "^xxh", "^xhx", "^hxk", "^xkj"} <= tokens()
            db_command(url, tmp_path / "instance", "downgrade", "5bae2b2accad")
            assert tokens() == {t for t in name_tokens(name, initials) if len(t) < 4}
        finally:
            engine.dispose()
