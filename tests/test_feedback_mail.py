"""Feedback by e-mail: real .eml files (GB18030 plain text, HTML-only UTF-8) parsed and saved once
per Message-ID, and the periodic job reading a real IMAP server (Dovecot from Debian, started
here on a free port with a mailbox of its own)."""
from __future__ import annotations

import imaplib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import ROOT, flask_cmd, free_port, subprocess_env

MAIL = Path(__file__).parent / "data" / "mail"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def test_messages_become_classified_feedback_once(app):
    from app.extensions import db
    from app.models import Feedback
    from app.services.actor import as_system_user
    from app.services.mail_intake import parse_message, take

    raw = (MAIL / "complaint-gb18030.eml").read_bytes()
    values = parse_message(raw)
    assert values["contact_name"] == "李女士" and values["email"] == "li.nvshi@example.com"
    assert values["subject"] == "投诉：物流太慢" and "包装还破损了" in values["content"]
    html = parse_message((MAIL / "suggestion-html.eml").read_bytes())
    assert "<" not in html["content"] and "增加导出功能" in html["content"]
    with app.test_request_context("/"), as_system_user():
        fb = take(raw)
        assert fb is not None and fb.channel == "email" and fb.type.code == "complaint"
        assert fb.attribute == "logistics" and fb.message_id == "<20240515093000.12345@mail.example.com>"
        assert take(raw) is None, "the same Message-ID is taken once"
        assert db.session.query(Feedback).filter_by(message_id=fb.message_id).count() == 1
        sug = take((MAIL / "suggestion-html.eml").read_bytes())
        assert sug.type.code == "suggestion" and sug.attribute == "product"


@pytest.fixture()
def imap_server():
    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot is missing (tests/run.sh installs dovecot-imapd)")
    # not under pytest's tmp_path: Dovecot's unprivileged processes must reach these files
    tmp_path = Path(tempfile.mkdtemp(prefix="crm-imap-"))
    port = free_port()
    (tmp_path / "run" / "state").mkdir(parents=True)
    (tmp_path / "mail").mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(tmp_path / "mail", 0o777)
    (tmp_path / "passwd").write_text("crm:{PLAIN}mailbox-pass\n")
    (tmp_path / "dovecot.conf").write_text(f"""
base_dir = {tmp_path}/run
state_dir = {tmp_path}/run/state
log_path = {tmp_path}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{tmp_path}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = {tmp_path}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={tmp_path}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
""")
    proc = subprocess.Popen([DOVECOT, "-F", "-c", str(tmp_path / "dovecot.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while True:
        try:
            imaplib.IMAP4("127.0.0.1", port).logout()
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("dovecot did not start: " + (tmp_path / "dovecot.log").read_text(errors="replace"))
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_mailbox_job_reads_a_real_imap_server(app, imap_server):
    from app.extensions import db
    from app.models import Feedback

    imap = imaplib.IMAP4("127.0.0.1", imap_server)
    imap.login("crm", "mailbox-pass")
    for name in ("complaint-gb18030.eml", "suggestion-html.eml"):
        imap.append("INBOX", None, None, (MAIL / name).read_bytes().replace(b"Message-ID: <", b"Message-ID: <imap-"))
    env = subprocess_env(CRM_IMAP_HOST="127.0.0.1", CRM_IMAP_PORT=str(imap_server), CRM_IMAP_SSL="0",
                         CRM_IMAP_USER="crm", CRM_IMAP_PASSWORD="mailbox-pass")
    out = subprocess.run(flask_cmd("crm", "jobs", "run", "feedback_mail"), cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert '"messages": 2' in out.stdout and '"feedback": 2' in out.stdout
    with app.app_context():
        rows = db.session.query(Feedback).filter(Feedback.message_id.like("<imap-%")).all()
        assert sorted(r.type.code for r in rows) == ["complaint", "suggestion"]
        assert all(r.channel == "email" and r.feedback_no.startswith("F") for r in rows)
    # the messages are marked seen: a second run takes nothing
    imap.select("INBOX")
    assert imap.uid("search", None, "UNSEEN")[1] == [b""]
    out = subprocess.run(flask_cmd("crm", "jobs", "run", "feedback_mail"), cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert '"messages": 0' in out.stdout
    imap.logout()


def test_mailbox_job_does_nothing_without_settings(app):
    from app.services.mail_intake import read_mailbox

    with app.app_context():
        assert read_mailbox() == {"configured": False}
