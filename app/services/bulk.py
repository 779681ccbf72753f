"""Rows written at the driver's speed, for bulk writers (imports) that already hold plain values:
PostgreSQL COPY (psycopg's cursor.copy), else one driver executemany; no per-row SQLAlchemy
parameter processing. In the caller's transaction (the connection's)."""
from __future__ import annotations

from typing import Iterable, Sequence

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection


def insert_rows(connection: Connection, table: Table, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``. Values must be what the driver
    takes as they are: str, int, float, bool, None, date/datetime (Decimal on PostgreSQL only)."""
    rows = rows if isinstance(rows, list) else list(rows)
    if not rows:
        return
    names = ", ".join(connection.dialect.identifier_preparer.quote(c) for c in columns)
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({', '.join([mark] * len(columns))})", rows)


def insert_columns(connection: Connection, table: Table, columns: dict[str, list]) -> None:
    """Insert rows given column by column (column name -> its values, all of one length), each
    column converted once by its type's bind processor, so the stored values are exactly those
    of a Core ``insert(table)`` with the same Python values (dates, Decimals, JSON, booleans)."""
    dialect = connection.dialect
    converted = []
    for name, values in columns.items():
        process = table.c[name].type._cached_bind_processor(dialect)
        converted.append([process(v) for v in values] if process else values)
    insert_rows(connection, table, list(columns), list(zip(*converted)))


def reserve_ids(connection: Connection, table: Table, n: int) -> list[int]:
    """``n`` new primary keys of ``table`` for rows inserted with their ids (no RETURNING round
    trip per row). PostgreSQL: taken from the id sequence. SQLite: the ids after the current
    largest, which is how SQLite itself numbers rows; the caller must already hold the write
    lock (have written in this transaction), so no other writer can take them meanwhile."""
    if n <= 0:
        return []
    if connection.dialect.name == "postgresql":
        return list(connection.execute(text(
            f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, :n)"), {"n": n})
            .scalars())
    last = connection.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table.name}")).scalar()
    return list(range(last + 1, last + 1 + n))
