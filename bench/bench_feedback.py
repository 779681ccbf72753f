"""Feedback classification and intake: our classify() (active rules from the database, jieba
segmentation with the rules' words added, scoring) against raw jieba.lcut on the same texts,
and our whole intake (submit: customer look-up by phone, classification, numbering, dispatch,
hashed code, one commit per feedback) against a raw INSERT of the same rows, in the same run.

    .venv/bin/python bench/bench_feedback.py [N]

Uses a throwaway SQLite instance dir (or DATABASE_URL). N realistic Chinese feedback texts
(50-150 characters) are made from phrases; prints texts/s for each and the ratios.
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
os.environ.setdefault("CRM_INSTANCE_DIR", tempfile.mkdtemp(prefix="crm-bench-"))
os.environ.setdefault("CRM_ADMIN_PASSWORD", "Bench-Admin-Pass-2024")

PHRASES = ["你们的快递太慢了", "包装破损严重", "客服态度很差", "产品质量不错", "希望增加夜间客服", "请问发票怎么开",
           "工程师非常专业耐心", "软件经常闪退", "建议优化付款流程", "价格比去年贵了", "感谢你们的及时处理",
           "电话一直没人接", "我要投诉", "什么时候能到货", "功能很好用，点赞", "上门维修很及时"]


def texts(n: int) -> list[str]:
    rnd = random.Random(7)
    return ["，".join(rnd.choice(PHRASES) for _ in range(rnd.randint(4, 10))) + "。" for _ in range(n)]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    import jieba
    from sqlalchemy import insert

    from app import create_app
    from app.extensions import db
    from app.models import Feedback
    from app.services.actor import as_system_user
    from app.services.bootstrap import initialise
    from app.services.feedback import classify, submit

    app = create_app()
    data = texts(n)
    with app.test_request_context("/"):
        initialise()
        classify("预热")  # loads jieba's dictionary once, as the first request of a process does
        t0 = time.perf_counter()
        for t in data:
            jieba.lcut(t)
        raw_seg = time.perf_counter() - t0
        t0 = time.perf_counter()
        for t in data:
            classify(t)
        ours_cls = time.perf_counter() - t0

        rows = [{"feedback_no": f"RAW{i:08d}", "content": t, "phone": f"139{i:08d}", "channel": "web",
                 "status": "pending", "type_corrected": False} for i, t in enumerate(data)]
        t0 = time.perf_counter()
        for row in rows:  # one commit per feedback, like the web form
            db.session.execute(insert(Feedback), [row])
            db.session.commit()
        raw_ins = time.perf_counter() - t0
        with as_system_user():
            t0 = time.perf_counter()
            for i, t in enumerate(data):
                submit({"content": t, "phone": f"138{i:08d}"}, "web")
            ours_ins = time.perf_counter() - t0

    engine = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
          f"{platform.python_version()}, {engine}; {n} feedback texts of 50-150 characters")
    print(f"classify   raw jieba.lcut {n / raw_seg:8.0f}/s   ours classify() {n / ours_cls:8.0f}/s   "
          f"ratio {raw_seg / ours_cls:.2f}")
    print(f"intake     raw INSERT+commit {n / raw_ins:6.0f}/s   ours submit() {n / ours_ins:8.0f}/s   "
          f"ratio {raw_ins / ours_ins:.2f}  ({(ours_ins - raw_ins) / n * 1000:.1f} ms more per feedback)")


if __name__ == "__main__":
    main()
