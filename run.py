"""Run the back office: `python run.py` migrates, seeds, creates `admin` and serves.

`flask --app run crm ...` finds `app` here; importing this module has no side effects beyond
building the app (no database writes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from app import create_app

app = create_app()


def settle_heap() -> None:
    """For a serving process: load pypinyin's dictionaries now (not on the first search) and move
    every long-lived object (the app, its views, those dictionaries: ~450,000 objects) out of the
    garbage collector's reach. A full collection over them took ~100 ms, landing on whichever
    request set it off: the p95 of bench/bench_list.py."""
    import gc

    from app.services.search_keys import pinyin_keys

    pinyin_keys("华星科技")
    gc.collect()
    gc.freeze()


if "gunicorn" in sys.modules:  # imported by a gunicorn worker (run:app)
    settle_heap()


def main() -> None:
    parser = argparse.ArgumentParser(description="客户关系管理后台 / CRM back office")
    parser.add_argument("--demo", nargs="?", const=200, type=int, default=0,
                        help="同时加载 N 个演示客户（默认 200） / also load N demo customers (default 200)")
    parser.add_argument("--no-serve", action="store_true", help="只初始化，不启动服务 / initialise only")
    args = parser.parse_args()

    from app.cli import _print_init
    from app.services.bootstrap import initialise

    with app.app_context():
        _print_init(initialise())
        if args.demo:
            from app.services.demo import load_demo

            print(f"演示数据 / demo: {json.dumps(load_demo(args.demo), ensure_ascii=False)}")
    if args.no_serve:
        return
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    if not app.config.get("REDIS_URL"):
        from app.jobs.inline import start_inline_scheduler

        start_inline_scheduler(app)
    settle_heap()
    print(f"客户关系管理后台已启动 / CRM back office at http://{host}:{port}/")
    app.run(host=host, port=port, threaded=True, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
