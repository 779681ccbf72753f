"""Search keys of a customer's name, kept by the model listeners (like the dedupe keys): full
pinyin and pinyin initials (华星科技 -> huaxingkeji, hxkj) and the name's tokens in
crm_customer_token, which make one-box search an index look-up on SQLite and PostgreSQL alike:

- every two-character piece of the name (华星科技 -> 华星, 星科, 科技): a Chinese substring of two
  or more characters is found through its first piece, then checked with LIKE on the few rows;
- every two- and three-letter piece of the initials, marked with ``^`` (^hx, ^xk, ^kj, ^hxk,
  ^xkj): initials typed anywhere in the name (hxkj in 北京华星科技: the rarest of ^hxk, ^xkj; two
  letters: ^hx) and full pinyin (huaxing -> ^hx) the same way. A three-letter piece is carried
  by a few times fewer customers than a two-letter one (at 1,000,000: ^htj 21,000, ^ht 74,000),
  so a page of a narrow initials search in a department reads that many fewer.

Measured in bench/bench_search.py against FTS5 and plain LIKE scans (README, 检索)."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable

from sqlalchemy import bindparam, delete

INITIALS_MARK = "^"
_NOT_KEPT = re.compile(r"[\s\W_]+", re.UNICODE)


def _clean(text: str | None) -> str:
    return _NOT_KEPT.sub("", (text or "")).lower()


@lru_cache(maxsize=200_000)
def _word_pinyin(word: str) -> tuple[str, str]:
    from pypinyin import Style, lazy_pinyin

    return ("".join(lazy_pinyin(word, errors="default")),
            "".join(lazy_pinyin(word, style=Style.FIRST_LETTER, errors="default")))


@lru_cache(maxsize=1)
def _runs() -> re.Pattern:
    """pypinyin's first split (simple_seg: runs of Chinese characters and runs of the rest) as one regex."""
    from pypinyin.constants import RE_HANS

    hans = RE_HANS.pattern[len("^(?:"):-len(")+$")]
    return re.compile(f"(?:{hans})+|(?:(?!{hans}).)+", re.S)


@lru_cache(maxsize=200_000)
def _run_pinyin(run: str) -> tuple[str, str]:
    from pypinyin.constants import PHRASES_DICT, RE_HANS
    from pypinyin.seg import mmseg

    words = [_word_pinyin(w) for w in (mmseg.seg.cut(run) if RE_HANS.match(run) and PHRASES_DICT else [run])]
    return "".join(w[0] for w in words), "".join(w[1] for w in words)


def pinyin_keys(name: str | None) -> tuple[str | None, str | None]:
    """(full pinyin, initials) of a name, lower case, letters and digits only.

    pypinyin reads a name word by word (its own segmentation, which is what picks a polyphone's
    reading: 重庆 chong, 重要 zhong): the name is split as pypinyin.seg splits it (runs of Chinese
    characters, then its word segmentation inside each run) and each run's pinyin is cached: the
    same result as converting the whole name, many times faster on imports where runs (有限公司,
    city names) repeat."""
    if not name:
        return None, None
    runs = [(r, r) if r.isascii() else _run_pinyin(r) for r in _runs().findall(name)]  # pypinyin keeps ASCII as is
    full = _clean("".join(r[0] for r in runs))
    initials = _clean("".join(r[1] for r in runs))
    return full[:800] or None, initials[:200] or None


def name_tokens(name: str | None, initials: str | None) -> set[str]:
    text = _clean(name)
    tokens = {text[i:i + 2] for i in range(len(text) - 1)}
    initials = initials or ""
    tokens |= {INITIALS_MARK + initials[i:i + n] for n in (2, 3) for i in range(len(initials) - n + 1)}
    return tokens


def _pairs(rows: Iterable[tuple[int, str | None, str | None]]) -> list[tuple[str, int]]:
    """(token, customer id) of each (customer id, name, initials), in the primary key's order when
    the rows come in id order (a bulk write then walks the index's pages once instead of at
    random): grouped by token, so only the distinct tokens are sorted."""
    groups: dict[str, list[int]] = {}
    for cid, name, initials in rows:
        for t in name_tokens(name, initials):
            groups.setdefault(t, []).append(cid)
    return [(t, cid) for t in sorted(groups) for cid in groups[t]]


def write_tokens(connection, rows: Iterable[tuple[int, str | None, str | None]], fresh: bool = False) -> None:
    """Add the tokens of each (customer id, name, initials) through ``connection``. ``fresh``:
    customers just inserted (no token yet: a plain bulk insert, COPY on PostgreSQL); otherwise
    tokens already there are kept (insert-or-ignore). Tokens of a former name are removed by
    ``drop_tokens`` with that name."""
    from app.models.search import CustomerToken
    from app.services.bulk import insert_rows

    table = CustomerToken.__table__
    pairs = _pairs(rows)
    if fresh or not pairs:
        insert_rows(connection, table, ("token", "customer_id"), pairs)
        return
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    connection.execute(insert(table).on_conflict_do_nothing(), [{"token": t, "customer_id": c} for t, c in pairs])


def drop_tokens(connection, rows: Iterable[tuple[int, str | None, str | None]]) -> None:
    """Remove the tokens of each (customer id, name, initials) as stored, by primary key (the
    table has no index on customer_id: see CustomerToken)."""
    from app.models.search import CustomerToken

    table = CustomerToken.__table__
    pairs = _pairs(rows)
    if pairs:
        connection.execute(delete(table).where(table.c.token == bindparam("t"), table.c.customer_id == bindparam("c")),
                           [{"t": t, "c": c} for t, c in pairs])


_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
             "r", "z", "c", "s", "y", "w", "")
_FINALS = ("iang", "iong", "uang", "ang", "eng", "ing", "ong", "ian", "iao", "uai", "uan", "ai", "ei",
           "ao", "ou", "an", "en", "er", "ia", "ie", "in", "iu", "ua", "uo", "ui", "un", "ue", "ve",
           "a", "o", "e", "i", "u", "v")


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    return frozenset(i + f for i in _INITIALS for f in _FINALS)


def initials_pieces(query: str) -> set[str]:
    """The tokens every name whose initials hold ``query`` (letters) carries: each three-letter
    piece of it (two letters: the query itself); the search reads the rarest."""
    q = _clean(query)
    if len(q) < 3:
        return {INITIALS_MARK + q} if len(q) == 2 else set()
    return {INITIALS_MARK + q[i:i + 3] for i in range(len(q) - 2)}


def syllable_tokens(query: str) -> set[str]:
    """Tokens a name may carry for ``query`` (letters) to begin its full pinyin at a syllable:
    the first letters of the query's first two syllables, for every way the query can start
    with a syllable (xian: xi-an and xian)."""
    q = _clean(query)
    tokens = set()
    for n in range(1, min(len(q), 6)):
        if q[:n] in _syllables():
            tokens.add(INITIALS_MARK + q[0] + q[n])
    return tokens
