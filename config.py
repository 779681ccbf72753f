"""Configuration: every setting comes from an environment variable with a safe default.

The embedded default needs nothing installed: SQLite in ``instance/`` and jobs run in-process.
Set ``DATABASE_URL`` (PostgreSQL 15) and ``REDIS_URL`` (Redis + RQ workers) to grow.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from flask_babel import lazy_gettext

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("CRM_INSTANCE_DIR", BASE_DIR / "instance"))


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{INSTANCE_DIR / 'crm.db'}"
    # Heroku-style and plain URLs name no driver; we ship psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in instance/.

    Several web processes on several machines must share one key: set SECRET_KEY there.
    """
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def _flag(name: str, default: str = "0") -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


class Config:
    APP_NAME = lazy_gettext("CRM Back Office")  # 客户关系管理后台: page titles and the navbar follow the user's language
    APP_THEME = ""
    FAB_BASE_TEMPLATE = "crm/base.html"  # FAB's layout plus app/static/css/crm.css
    SECRET_KEY = _secret_key()
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = os.environ.get("REDIS_URL", "").strip() or None
    RQ_QUEUES = ["default", "reports"]

    # Schema comes only from Alembic migrations; permissions are synced by the bootstrap step
    # (`flask crm init` / `python run.py`), never by each web process at import.
    FAB_CREATE_DB = False
    FAB_UPDATE_PERMS = False
    FAB_ADD_SECURITY_API = True
    FAB_API_SWAGGER_UI = True
    FAB_SECURITY_MANAGER_CLASS = "app.security.manager.CrmSecurityManager"
    FAB_INDEX_VIEW = "app.views.home.CrmIndexView"
    AUTH_ROLE_ADMIN = "管理员"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_USER_REGISTRATION = False

    # Language: Simplified Chinese first, English on request (per user).
    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "app" / "translations")
    LANGUAGES = {
        "zh": {"flag": "cn", "name": "简体中文"},
        "en": {"flag": "gb", "name": "English"},
    }

    # Security baseline (see README "安全 / Security").
    AUTH_RATE_LIMITED = True
    RATELIMIT_ENABLED = True
    AUTH_RATE_LIMIT = os.environ.get("CRM_LOGIN_RATE_LIMIT", "5 per minute")
    RATELIMIT_STORAGE_URI = REDIS_URL or "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    FAB_SAFE_REDIRECT_HOSTS = [
        h.strip()
        for h in os.environ.get("CRM_ALLOWED_HOSTS", "127.0.0.1:*,localhost:*,127.0.0.1,localhost").split(",")
        if h.strip()
    ]
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _flag("CRM_HTTPS")
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = _flag("CRM_HTTPS")
    PERMANENT_SESSION_LIFETIME = int(os.environ.get("CRM_SESSION_HOURS", "12")) * 3600
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # tied to the session, which expires on its own
    FAB_PASSWORD_COMPLEXITY_ENABLED = True
    # FAB_PASSWORD_COMPLEXITY_VALIDATOR is set in create_app (FAB wants the callable itself).
    CRM_PASSWORD_MIN_LENGTH = 10
    PREFERRED_URL_SCHEME = "https" if _flag("CRM_HTTPS") else "http"
    DEBUG = False
    PROPAGATE_EXCEPTIONS = False

    CRM_SYSTEM_USER = "system"
    # "At least two ways to reach a customer": a warning on the customer page below this many
    # distinct phones / e-mails / IM accounts over its contacts (0 = no warning).
    CRM_MIN_CONTACT_WAYS = int(os.environ.get("CRM_MIN_CONTACT_WAYS", "2"))
    CRM_SEED_DIR = os.environ.get("CRM_SEED_DIR") or None  # default: seeds/ of the repository
    CRM_JOB_RETRY_INTERVALS = [10, 60, 300]
    SMTP_URL = os.environ.get("SMTP_URL", "").strip() or None  # reminder e-mails; unset: logged
    CRM_MAIL_FROM = os.environ.get("CRM_MAIL_FROM") or None
    CRM_KEY_INFO_STALE_DAYS = int(os.environ.get("CRM_KEY_INFO_STALE_DAYS", "30"))
    # Lists and search count matches up to this many past the page shown, then say "1,000+":
    # counting every row of a big table costs more than the page itself (app/services/paging.py).
    CRM_COUNT_CAP = int(os.environ.get("CRM_COUNT_CAP", "1000"))
    # Customer attachments: stored outside the database, random names (app/services/attachments.py).
    CRM_ATTACHMENT_DIR = os.environ.get("CRM_ATTACHMENT_DIR") or str(INSTANCE_DIR / "attachments")
    CRM_ATTACHMENT_MAX_MB = float(os.environ.get("CRM_ATTACHMENT_MAX_MB", "20"))
    CRM_ATTACHMENT_TYPES = os.environ.get("CRM_ATTACHMENT_TYPES", "pdf,png,jpg,jpeg,xlsx,docx,txt")
    # Exports (app/services/export.py): up to CRM_EXPORT_SYNC_ROWS rows download at once, more run
    # as a job whose file is kept under CRM_EXPORT_DIR for CRM_EXPORT_KEEP_DAYS days.
    CRM_EXPORT_DIR = os.environ.get("CRM_EXPORT_DIR") or str(INSTANCE_DIR / "exports")
    CRM_EXPORT_SYNC_ROWS = int(os.environ.get("CRM_EXPORT_SYNC_ROWS", "5000"))
    # From this many matching rows an export reads in a forked process while it writes.
    CRM_EXPORT_FORK_ROWS = int(os.environ.get("CRM_EXPORT_FORK_ROWS", "50000"))
    CRM_EXPORT_KEEP_DAYS = float(os.environ.get("CRM_EXPORT_KEEP_DAYS", "7"))
    # Spreadsheet imports (app/services/importer.py): uploads kept under CRM_IMPORT_DIR; files above
    # CRM_IMPORT_MAX_MB, or .xlsx unpacking beyond CRM_IMPORT_MAX_UNZIPPED_MB, are refused unread.
    CRM_IMPORT_DIR = os.environ.get("CRM_IMPORT_DIR") or str(INSTANCE_DIR / "imports")
    CRM_IMPORT_MAX_MB = float(os.environ.get("CRM_IMPORT_MAX_MB", "50"))
    CRM_IMPORT_MAX_UNZIPPED_MB = float(os.environ.get("CRM_IMPORT_MAX_UNZIPPED_MB", "500"))
    # A running import beats every few seconds; one silent for CRM_IMPORT_STALE_SECONDS (or whose RQ
    # job failed) has lost its worker and may be retried. Uploads are deleted CRM_IMPORT_KEEP_DAYS
    # days after their batch ended (periodic job import_cleanup).
    # Imports stream: rows are read, checked and saved this many at a time (memory holds one chunk).
    CRM_IMPORT_CHUNK_ROWS = int(os.environ.get("CRM_IMPORT_CHUNK_ROWS", "2000"))
    # .xlsx whose sheets unpack beyond this (MB) are read by openpyxl's streaming reader: slower,
    # but calamine would hold the whole sheet in memory (about as much as its unpacked XML).
    CRM_IMPORT_CALAMINE_MAX_MB = float(os.environ.get("CRM_IMPORT_CALAMINE_MAX_MB", "200"))
    CRM_IMPORT_STALE_SECONDS = float(os.environ.get("CRM_IMPORT_STALE_SECONDS", "60"))
    CRM_IMPORT_KEEP_DAYS = float(os.environ.get("CRM_IMPORT_KEEP_DAYS", "30"))

    # Customer feedback (README 客户反馈 / 公开页面 / 满意度回访).
    CRM_FEEDBACK_DEFAULT_TYPE = os.environ.get("CRM_FEEDBACK_DEFAULT_TYPE", "consult")  # when no rule matches
    CRM_FEEDBACK_DEFAULT_ATTRIBUTE = os.environ.get("CRM_FEEDBACK_DEFAULT_ATTRIBUTE", "service")
    CRM_FEEDBACK_FALLBACK_ROLE = os.environ.get("CRM_FEEDBACK_FALLBACK_ROLE", "客服部主管")  # nobody holds the rule's role
    CRM_FEEDBACK_PROMISE_HOURS = int(os.environ.get("CRM_FEEDBACK_PROMISE_HOURS", "72"))
    CRM_PUBLIC_RATE_LIMIT = os.environ.get("CRM_PUBLIC_RATE_LIMIT", "10 per minute")  # public form posts
    CRM_PUBLIC_LOOKUP_LIMIT = os.environ.get("CRM_PUBLIC_LOOKUP_LIMIT", "5 per 10 minutes")  # wrong look-ups
    CRM_SURVEY_VALID_HOURS = int(os.environ.get("CRM_SURVEY_VALID_HOURS", "168"))
    CRM_REVISIT_ROLE = os.environ.get("CRM_REVISIT_ROLE", "客服部主管")
    CRM_PUBLIC_URL = os.environ.get("CRM_PUBLIC_URL", "").strip() or None  # e.g. https://crm.example.com
    CRM_MAIL_FROM = os.environ.get("CRM_MAIL_FROM", "crm@localhost")
    CRM_IMAP_HOST = os.environ.get("CRM_IMAP_HOST", "").strip() or None  # unset: no mail intake
    CRM_IMAP_PORT = int(os.environ.get("CRM_IMAP_PORT", "993"))
    CRM_IMAP_SSL = _flag("CRM_IMAP_SSL", "1")
    CRM_IMAP_USER = os.environ.get("CRM_IMAP_USER", "")
    CRM_IMAP_PASSWORD = os.environ.get("CRM_IMAP_PASSWORD", "")
    CRM_IMAP_FOLDER = os.environ.get("CRM_IMAP_FOLDER", "INBOX")


class TestConfig(Config):
    TESTING = False  # keep production error handling: tests check what users see
    AUTH_RATE_LIMIT = "5 per minute"
