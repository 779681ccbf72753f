#!/usr/bin/env bash
# The project's one test command (README, .ci/run). On a fresh Debian machine, as root:
# creates .venv, installs requirements, installs and starts Redis, PostgreSQL 15 and Chromium
# from Debian packages when missing, then runs the whole suite twice: on SQLite and on
# PostgreSQL, with jobs going through the real Redis and a real RQ worker both times.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
REDIS_PORT=${CRM_TEST_REDIS_PORT:-6390}
PG_URL_BASE=${CRM_TEST_PG_URL:-postgresql://crm_test:crm_test@127.0.0.1:5432}
log() { echo "[tests/run.sh] $*"; }

need=()
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)  # a real IMAP server for the feedback mailbox test
[ -d /usr/share/fonts/opentype/noto ] || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null || { log "apt-get failed"; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv || exit 1; fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt || { log "pip install failed"; exit 1; }

if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  log "starting redis-server on $REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no >/dev/null
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! pg_lsclusters -h 2>/dev/null | grep -q "^15 "; then pg_createcluster 15 main >/dev/null; fi
if ! pg_lsclusters -h | grep -q "^15 .* online"; then
  log "starting PostgreSQL 15"
  pg_ctlcluster 15 main start || { log "PostgreSQL did not start"; exit 1; }
fi
runuser -u postgres -- psql -qtAc "SELECT 1 FROM pg_roles WHERE rolname='crm_test'" | grep -q 1 \
  || runuser -u postgres -- psql -qc "CREATE ROLE crm_test LOGIN CREATEDB PASSWORD 'crm_test'"

export PYTHONDONTWRITEBYTECODE=1
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/15"
export CRM_TEST_ADMIN_URL="$PG_URL_BASE/postgres"
# FAB and WTForms 3.3 warn about their own deprecations thousands of times a run; hide that noise.
PYTEST_QUIET="-W ignore::DeprecationWarning:wtforms.widgets.core -W ignore::DeprecationWarning:flask_appbuilder"
status=0
log "pytest on SQLite (jobs on Redis + RQ worker)"
CRM_TEST_ENGINE=sqlite .venv/bin/python -m pytest -p no:cacheprovider $PYTEST_QUIET "$@" tests || status=1
log "pytest on PostgreSQL 15 (jobs on Redis + RQ worker)"
CRM_TEST_ENGINE=postgresql .venv/bin/python -m pytest -p no:cacheprovider $PYTEST_QUIET "$@" tests || status=1
[ $status = 0 ] && log "all passed on SQLite and PostgreSQL" || log "FAILED"
exit $status
