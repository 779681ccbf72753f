"""Import robustness (导入的可靠性): a batch whose worker was killed mid-import is shown as
stopped, with nothing of it saved, and runs again safely from the batch page, the API or the
CLI; stored uploads are deleted after CRM_IMPORT_KEEP_DAYS by the import_cleanup job."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import ROOT, csrf_token, flask_cmd, subprocess_env
from test_import import batch_state, big_csv, children_of, count_prefix, create_batch_as, run_import, uniq, wait_until

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL")


@pytest.fixture()
def quick_stale(app):
    """A run silent for 12 s (instead of a minute) is dead: it beats every 5 s while it lives."""
    old = app.config["CRM_IMPORT_STALE_SECONDS"]
    app.config["CRM_IMPORT_STALE_SECONDS"] = 12
    yield
    app.config["CRM_IMPORT_STALE_SECONDS"] = old


def kill_tree(proc: subprocess.Popen) -> None:
    for pid in children_of(proc.pid) + [proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


def test_killed_worker_batch_is_shown_stopped_and_the_retry_button_finishes_it(app, rq_worker, admin_client,
                                                                                 tmp_path, quick_stale):
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import start

    prefix, n = uniq("重试"), 12000
    batch_id = create_batch_as(app, big_csv(tmp_path / "retry.csv", prefix, n))
    queue = f"import-retry-{uuid.uuid4().hex[:6]}"  # only the doomed worker listens here
    with app.app_context():  # queued first: a burst worker that finds its queue empty stops at once
        start(db.session.get(ImportBatch, batch_id), False, queue=queue)
    log = open(tmp_path / "worker.log", "w")
    doomed = subprocess.Popen(flask_cmd("crm", "worker", "--queues", queue, "--burst"), cwd=ROOT, env=subprocess_env(),
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: (batch_state(app, batch_id)[2].get("saved") or 0) > 0, 120, "the save to be under way")
        page = admin_client.get(f"/import/{batch_id}/").get_data(as_text=True)
        assert 'id="import-progress"' in page and 'id="retry-button"' not in page  # alive: progress, no retry
    finally:
        kill_tree(doomed)
        log.close()

    wait_until(lambda: admin_client.get(f"/import/{batch_id}/progress").json["stale"], 60, "the batch to be seen stopped")
    api = admin_client.get(f"/api/v1/import/batches/{batch_id}").json
    assert api["status"] in ("checking", "importing") and (api["stale"], api["retryable"]) == (True, True)
    assert count_prefix(app, prefix) == (0, 0)
    page = admin_client.get(f"/import/{batch_id}/").get_data(as_text=True)
    assert 'id="stale-batch"' in page and "没有保存任何数据" in page and 'id="import-progress"' not in page

    r = admin_client.post(f"/import/{batch_id}/retry", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 302
    wait_until(lambda: batch_state(app, batch_id)[0] == "done", 300, "the retried run")
    assert count_prefix(app, prefix) == (n, n)
    page = admin_client.get(f"/import/{batch_id}/").get_data(as_text=True)
    assert f'id="rows-created">{n}<' in page and 'id="retry-button"' not in page
    # a finished batch is not run again (the API says why); nothing doubles
    token = csrf_token(page)
    r = admin_client.post(f"/api/v1/import/batches/{batch_id}/retry", headers={"X-CSRFToken": token})
    assert r.status_code == 409 and "才能重新运行" in r.json["message"]
    assert count_prefix(app, prefix) == (n, n)


def test_killed_cli_import_is_retried_from_the_cli(app, tmp_path, quick_stale):
    from sqlalchemy import select

    from app.extensions import db
    from app.models.importing import ImportBatch

    prefix, n = uniq("命令重试"), 12000
    path = big_csv(tmp_path / "cli-retry.csv", prefix, n)
    name = f"{prefix}.csv"
    os.rename(path, tmp_path / name)
    proc = subprocess.Popen(flask_cmd("crm", "import", "customers", str(tmp_path / name)), cwd=ROOT,
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def batch_id():
        with app.app_context():
            return db.session.execute(select(ImportBatch.id).where(ImportBatch.file_name == name)).scalar()

    try:
        wait_until(lambda: batch_id() and (batch_state(app, batch_id())[2].get("saved") or 0) > 0, 120,
                   "the CLI import to be saving")
    finally:
        kill_tree(proc)
    bid = batch_id()

    def stale() -> bool:
        from app.services.importer import is_stale

        with app.app_context():
            return is_stale(db.session.get(ImportBatch, bid))

    wait_until(stale, 60, "the batch to be seen stopped")
    assert count_prefix(app, prefix) == (0, 0)
    env = subprocess_env(CRM_IMPORT_STALE_SECONDS="12")
    out = subprocess.run(flask_cmd("crm", "import", "retry", str(bid), "--json"), cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout[out.stdout.index("{"):])
    assert (report["batch"], report["status"], report["rows_created"]) == (bid, "done", n)
    assert count_prefix(app, prefix) == (n, n)
    again = subprocess.run(flask_cmd("crm", "import", "retry", str(bid)), cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 1 and "才能重新运行" in again.stderr


def test_uploads_are_deleted_after_the_retention_by_the_periodic_job(app, admin_client, tmp_path):
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import import_dir

    from test_import import csv_file

    old = run_import(app, csv_file(tmp_path / "old.csv", [["客户名称", "手机"], [uniq("旧"), "13x"]]))
    new = run_import(app, csv_file(tmp_path / "new.csv", [["客户名称", "手机"], [uniq("新"), "13x"]]))
    assert old["status"] == new["status"] == "rejected"  # bad phones: the error workbook needs the file
    with app.app_context():
        keep = app.config["CRM_IMPORT_KEEP_DAYS"]
        old_batch = db.session.get(ImportBatch, old["batch"])
        old_batch.finished_on = datetime.utcnow() - timedelta(days=keep + 1)  # as if it ended long ago
        db.session.commit()
        old_file, new_file = Path(old_batch.file_path), Path(db.session.get(ImportBatch, new["batch"]).file_path)
        orphan = import_dir() / f"{uuid.uuid4().hex}.csv"  # an upload no batch owns (a crash before recording)
        orphan.write_text("x")
        past = time.time() - (keep + 1) * 86400
        os.utime(orphan, (past, past))
    assert old_file.exists() and new_file.exists()
    assert admin_client.get(f"/import/{old['batch']}/errors.xlsx").status_code == 200

    out = subprocess.run(flask_cmd("crm", "jobs", "run", "import_cleanup"), cwd=ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not old_file.exists() and not orphan.exists() and new_file.exists()
    with app.app_context():
        assert db.session.get(ImportBatch, old["batch"]).file_purged_on is not None
    page = admin_client.get(f"/import/{old['batch']}/").get_data(as_text=True)
    assert 'id="import-errors"' in page and 'id="error-workbook"' not in page  # report kept, no workbook link
    r = admin_client.get(f"/import/{old['batch']}/errors.xlsx", follow_redirects=True)
    assert "上传的文件已删除" in r.get_data(as_text=True)
    assert admin_client.get(f"/import/{new['batch']}/errors.xlsx").status_code == 200
