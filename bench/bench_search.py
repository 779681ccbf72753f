"""Customer search at scale: our search service (app/services/search.py: scope, "not archived",
count + first page of 50, masking, tags, contact phones) against the bare index look-up behind
each kind, measured in the same run, plus a plain LIKE scan for comparison.

    .venv/bin/python bench/bench_search.py [N]                 # SQLite, N customers (default 1,000,000)
    BENCH_DATABASE_URL=postgresql://u:p@host/db .venv/bin/python bench/bench_search.py [N]

SQLite uses a throwaway instance dir; PostgreSQL needs an empty database it may fill. Customers
are realistic Chinese company names (seeds/demo/names.yaml: city + trade name + industry word +
suffix; 1 in 10,000 carries the rare trade name 翡翠) with 1-2 contacts and 1-2 tags each,
bulk-loaded with the same key functions the model listeners use. Prints the median of 5 runs
per kind in ms, our figure next to the raw limit and the ratio, and the machine.
"""
from __future__ import annotations

import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.timing import median_ms  # noqa: E402
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")
if os.environ.get("BENCH_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
else:
    os.environ.pop("DATABASE_URL", None)
BATCH = 20_000


def _bulk(conn, table: str, columns: list[str], rows: list[tuple]) -> None:
    """Driver-level bulk insert (COPY on PostgreSQL): loading is not what is measured."""
    cur = conn.cursor()
    if conn.__class__.__module__.startswith("psycopg"):
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
    cur.close()


LOADED = ("crm_customer", "crm_contact", "crm_customer_token", "crm_customer_tag")


def _drop_indexes(conn, tables) -> list[str]:
    """Drop the secondary indexes of ``tables`` (not those behind primary keys and unique
    constraints); returns the statements that create them again."""
    cur = conn.cursor()
    if conn.__class__.__module__.startswith("psycopg"):
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)"
                    " AND indexname NOT IN (SELECT conname FROM pg_constraint)", [list(tables)])
    else:
        cur.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                    f" AND tbl_name IN ({', '.join('?' * len(tables))})", tables)
    found = cur.fetchall()
    for name, _ddl in found:
        cur.execute(f'DROP INDEX "{name}"')
    conn.commit()
    cur.close()
    return [ddl for _name, ddl in found]


def build(n: int, per_contacts: tuple[int, int] = (1, 2), per_tags: tuple[int, int] = (1, 2),
          owners: list[tuple[int, int | None]] | None = None) -> dict:
    """Load ``n`` customers with per_contacts (min, max) contacts and per_tags (min, max) tags each
    (5 or more: drawn from every active tag, else from 5 common ones), owned by the admin or spread evenly over
    ``owners`` [(user id, department id)] (bench_list.py)."""
    import yaml
    from functools import lru_cache

    from app.extensions import appbuilder, db
    from app.models import DictionaryItem, Tag
    from app.services.dedupe import normalise_phone
    from app.services.search_keys import name_tokens, pinyin_keys
    from app.services.tagging import find_tag

    words = yaml.safe_load((ROOT / "seeds" / "demo" / "names.yaml").read_text(encoding="utf-8"))
    keys = lru_cache(maxsize=None)(pinyin_keys)  # names are made of few parts: key the parts
    industries = {i.code: i.id for i in db.session.query(DictionaryItem).filter_by(type_key="industry")}
    levels = [i.id for i in db.session.query(DictionaryItem).filter_by(type_key="customer_level")]
    tags = [find_tag(t).id for t in ("消费能力-高", "消费能力-中", "需求-技术支持", "活跃度-沉睡", "区域-华东")]
    pool = tags if per_tags[1] < len(tags) else [t.id for t in db.session.query(Tag).filter_by(active=True)]
    admin = appbuilder.sm.find_user(username="admin").id
    owners = owners or [(admin, None)]
    raw = db.engine.raw_connection()
    conn = raw.driver_connection
    if db.engine.dialect.name == "sqlite":  # loading is not measured: keep its b-trees in memory
        conn.execute("PRAGMA cache_size = -3000000")
        conn.execute("PRAGMA synchronous = OFF")
    rnd = random.Random(7)
    t0 = time.perf_counter()
    indexes = _drop_indexes(conn, LOADED)  # built once at the end: much faster than row by row
    cid = contact_id = 0
    for start in range(0, n, BATCH):
        customers, contacts, tokens, links = [], [], [], []
        for _ in range(min(BATCH, n - start)):
            cid += 1
            city, code = rnd.choice(words["cities"]), rnd.choice(list(words["industry_words"]))
            trade = "翡翠" if cid % 10_000 == 0 else rnd.choice(words["trade_names"])
            parts = (city, trade, rnd.choice(words["industry_words"][code]), rnd.choice(words["company_suffixes"]))
            name = "".join(parts)
            part_keys = [keys(p) for p in parts]
            full = "".join(k[0] or "" for k in part_keys)
            initials = "".join(k[1] or "" for k in part_keys)
            credit = f"9{rnd.randint(10**16, 10**17 - 1)}X"
            last = None if rnd.random() < 0.3 else f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} 10:00:00"
            owner, dept = owners[cid % len(owners)]
            customers.append((cid, f"B{cid:09d}", name, name, full, initials, credit, industries[code],
                              rnd.choice(levels), last, rnd.randint(0, 900) * 1000, owner, dept, False,
                              "2024-01-01 00:00:00", "2024-01-01 00:00:00", owner, owner))
            tokens += [(t, cid) for t in name_tokens(name, initials)]
            for j in range(rnd.randint(*per_contacts)):
                contact_id += 1
                phone = f"1{rnd.choice('3456789')}{rnd.randint(0, 999999999):09d}"
                contacts.append((contact_id, cid, rnd.choice(words["surnames"]) + rnd.choice(words["given_names"]),
                                 phone, normalise_phone(phone), phone[-4:], j == 0,
                                 "2024-01-01 00:00:00", "2024-01-01 00:00:00", owner, owner))
            for tag in rnd.sample(pool, rnd.randint(*per_tags)):
                links.append((cid, tag, "manual", "2024-01-01 00:00:00"))
        _bulk(conn, "crm_customer", ["id", "customer_no", "name", "name_key", "name_pinyin", "name_initials",
                                     "credit_code", "industry_id", "level_id", "last_contact_at", "total_amount",
                                     "owner_id", "department_id", "archived", "created_on", "changed_on", "created_by_fk",
                                     "changed_by_fk"], customers)
        _bulk(conn, "crm_contact", ["id", "customer_id", "name", "phone", "phone_key", "phone_last4", "is_primary",
                                    "created_on", "changed_on", "created_by_fk", "changed_by_fk"], contacts)
        _bulk(conn, "crm_customer_token", ["token", "customer_id"], tokens)
        _bulk(conn, "crm_customer_tag", ["customer_id", "tag_id", "source", "tagged_at"], links)
        conn.commit()
        print(f"\r  loaded {cid:,} customers ({time.perf_counter() - t0:.0f} s)", end="", file=sys.stderr, flush=True)
    cur = conn.cursor()
    for ddl in indexes:
        cur.execute(ddl)
    cur.execute("ANALYZE")
    conn.commit()
    raw.close()
    print(file=sys.stderr)
    return {"load_s": time.perf_counter() - t0, "tags": tags, "industry": industries["C"], "levels": levels}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    from flask import g
    from sqlalchemy import text

    from app import create_app
    from app.extensions import appbuilder, db
    from app.models import Customer
    from app.services import search
    from app.services.bootstrap import initialise

    app = create_app()
    with app.app_context():
        initialise()
        engine = db.engine.dialect.name
        if db.session.query(Customer).count() < n:
            info = build(n)
        else:  # measure again on a database loaded before (same CRM_INSTANCE_DIR / BENCH_DATABASE_URL)
            db.session.execute(text("ANALYZE"))
            db.session.commit()
            info = {"load_s": 0.0}
            from app.services.tagging import find_tag
            from app.models import DictionaryItem
            info["tags"] = [find_tag(t).id for t in ("消费能力-高", "消费能力-中", "需求-技术支持")]
            info["industry"] = db.session.query(DictionaryItem).filter_by(type_key="industry", code="C").one().id
        phone = db.session.execute(text("SELECT phone FROM crm_contact WHERE id = :i"), {"i": n // 2}).scalar()
        credit = db.session.execute(text("SELECT credit_code FROM crm_customer WHERE id = :i"), {"i": n // 3}).scalar()
        industry_name = db.session.execute(text("SELECT name FROM crm_dictionary_item WHERE id = :i"),
                                           {"i": info["industry"]}).scalar()
        t_high, t_mid, t_need = info["tags"][:3]

        def bare(sql: str, **params):
            return lambda: db.session.execute(text(sql), params).all()

        tok = "SELECT customer_id FROM crm_customer_token WHERE token = :t ORDER BY customer_id DESC LIMIT 50"
        kinds = [
            ("2-char Chinese, common (恒通)", {"q": "恒通"}, bare(tok, t="恒通")),
            ("2-char Chinese, rare (翡翠)", {"q": "翡翠"}, bare(tok, t="翡翠")),
            ("4-char Chinese (翡翠电子)", {"q": "翡翠电子"}, bare(tok, t="翡翠")),
            ("pinyin initials (fcdzkj)", {"q": "fcdzkj"}, bare(tok, t="^fc")),
            ("full pinyin (feicui)", {"q": "feicui"}, bare(tok, t="^fc")),
            ("phone last 4", {"q": phone[-4:]},
             bare("SELECT customer_id FROM crm_contact WHERE phone_last4 = :p LIMIT 50", p=phone[-4:])),
            ("full phone", {"q": phone},
             bare("SELECT customer_id FROM crm_contact WHERE phone_key = :p LIMIT 50", p=phone)),
            ("credit code", {"q": credit},
             bare("SELECT id FROM crm_customer WHERE credit_code = :c LIMIT 50", c=credit)),
            ("combined: industry + 2 tags in + 1 out",
             {"c": [f"industry:eq:{industry_name}"], "tag": ["消费能力-高", "需求-技术支持"], "notag": ["消费能力-中"]},
             bare("SELECT id FROM crm_customer c WHERE industry_id = :i AND archived = :f"
                  " AND EXISTS (SELECT 1 FROM crm_customer_tag t WHERE t.customer_id = c.id AND t.tag_id = :a)"
                  " AND EXISTS (SELECT 1 FROM crm_customer_tag t WHERE t.customer_id = c.id AND t.tag_id = :b)"
                  " AND NOT EXISTS (SELECT 1 FROM crm_customer_tag t WHERE t.customer_id = c.id AND t.tag_id = :m)"
                  " ORDER BY id DESC LIMIT 50", i=info["industry"], a=t_high, b=t_need, m=t_mid, f=False)),
            ("combined + not contacted for 3 months", {"c": [f"industry:eq:{industry_name}"], "idle": 3,
                                                       "tag": ["消费能力-高"]},
             bare("SELECT id FROM crm_customer c WHERE industry_id = :i AND (last_contact_at IS NULL OR"
                  " last_contact_at < :d) AND EXISTS (SELECT 1 FROM crm_customer_tag t WHERE t.customer_id = c.id"
                  " AND t.tag_id = :a) ORDER BY id DESC LIMIT 50", i=info["industry"], a=t_high, d="2026-01-01")),
        ]
        scan = median_ms(bare("SELECT id FROM crm_customer WHERE name LIKE :q ORDER BY id DESC LIMIT 50", q="%翡翠%"), 3)
        count_scan = median_ms(bare("SELECT count(*) FROM crm_customer WHERE name LIKE :q", q="%翡翠%"), 3)
        admin = appbuilder.sm.find_user(username="admin")
        rows = []
        with app.test_request_context():
            g.user = admin
            for label, args, raw_fn in kinds:
                query = search.SearchQuery.from_args(args)
                page = search.search(query)
                ours = median_ms(lambda: search.search(query))
                lookup = median_ms(lambda: search.lookup_customers(args.get("q", ""))) if args.get("q") else None
                rows.append((label, page.count, ours, lookup, median_ms(raw_fn)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{engine}, {n:,} customers (load {info['load_s']:.0f} s); median of 5, ms")
    print(f"{'kind':42}{'hits':>9}{'search':>9}{'lookup':>9}{'raw':>8}{'ratio':>8}")
    for label, hits, ours, lookup, raw in rows:
        look = f"{lookup:9.1f}" if lookup is not None else f"{'':>9}"
        print(f"{label:42}{hits:9,}{ours:9.1f}{look}{raw:8.2f}{ours / max(raw, 0.01):8.0f}")
    print(f"for comparison, no index: name LIKE '%翡翠%' first 50 {scan:.0f} ms, count {count_scan:.0f} ms")
    print("search = count + first page of 50 (scoped, masked, tags, contacts); lookup = 20 for a picker; "
          "raw = the bare index look-up of the first 50 ids")


if __name__ == "__main__":
    main()
