#!/usr/bin/env bash
# `make run`: preflight, migrate, demo credentials, then web + Celery worker + Celery beat in the foreground.
# Ctrl-C (or SIGTERM to the process group) stops all three; see the trap below.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
export PORT
export DJANGO_ENV="${DJANGO_ENV:-development}"  # development defaults: mail files, generated keys
mkdir -p var/mail

# A development secret per checkout (never committed) instead of the shared default, so sessions and subject
# pseudonyms are not keyed with a public value. Set DJANGO_SECRET_KEY / PSEUDONYM_KEY in production.
if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
  [ -s var/secret-key ] || (umask 077; $BIN/python -c "import secrets; print(secrets.token_urlsafe(50))" > var/secret-key)
  DJANGO_SECRET_KEY="$(cat var/secret-key)"
  export DJANGO_SECRET_KEY
  echo "DJANGO_SECRET_KEY not set: using the development key in var/secret-key"
fi
if [ -z "${CERTIFICATE_SIGNING_KEY:-}${CERTIFICATE_SIGNING_KEY_FILE:-}" ]; then
  export CERTIFICATE_SIGNING_KEY_AUTOGENERATE="${CERTIFICATE_SIGNING_KEY_AUTOGENERATE:-1}"
  echo "CERTIFICATE_SIGNING_KEY not set: certificates are signed with a development key in var/signing-key.pem"
fi

$BIN/python scripts/preflight.py
$BIN/python manage.py migrate --noinput -v 0
$BIN/python manage.py collectstatic --noinput -v 0
$BIN/python manage.py ensure_demo

# Each of the three runs in its own process group (job control), so the terminal's Ctrl-C reaches only this
# script, which then stops them one way: SIGTERM, gunicorn's graceful stop (requests in flight finish) and Celery's
# warm shutdown (a running task finishes), and waits for all three. A second Ctrl-C meanwhile sends SIGQUIT: quick
# stop and cold shutdown.
set -m
pids=()
stop_now() {
  echo "stopping now…"
  for pid in "${pids[@]}"; do kill -QUIT "$pid" 2>/dev/null || true; done
}
cleanup() {
  trap - TERM EXIT
  trap stop_now INT
  echo "stopping web, worker and beat…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do wait "$pid" 2>/dev/null || true; done
  done
}
trap cleanup INT TERM EXIT

$BIN/gunicorn config.wsgi --bind "0.0.0.0:${PORT}" --workers 2 --threads 4 --access-logformat '%(m)s %(s)s %(L)ss' \
  --access-logfile - --log-level warning --graceful-timeout 5 &
pids+=($!)
$BIN/celery -A config worker -l INFO --concurrency 2 -n "worker@%h" &
pids+=($!)
$BIN/celery -A config beat -l INFO --schedule var/celerybeat-schedule &
pids+=($!)

echo
echo "  web:           http://localhost:${PORT}/"
echo "  subject form:  http://localhost:${PORT}/privacy/request/"
echo "  privacy team:  http://localhost:${PORT}/privacy-team/"
echo "  API docs:      http://localhost:${PORT}/api/docs/"
echo "  health:        http://localhost:${PORT}/healthz"
echo "  Ctrl-C stops web, worker and beat."
echo

# Any one of the three exiting stops the others.
wait -n "${pids[@]}"
