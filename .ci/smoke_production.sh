#!/usr/bin/env bash
# Production smoke: build static files as the Dockerfile does, migrate a fresh PostgreSQL database,
# start gunicorn with DEBUG off against PostgreSQL + Redis, and fetch the pages an operator opens first.
# Any status other than the expected one (a 500 above all) fails the run.
#
# Environment (defaults in brackets):
#   SMOKE_DB         the database to drop, create and migrate           [retail_crm_smoke]
#   SMOKE_PG         the PostgreSQL server, as a URL without a database  [postgres://postgres@127.0.0.1:5432]
#   SMOKE_REDIS_URL  Redis for the cache and broker                      [redis://127.0.0.1:6379/13]
#   SMOKE_PORT       the local port gunicorn listens on                  [8765]
#
# Plain http to 127.0.0.1: SECURE_SSL_REDIRECT=0, as docker-compose runs behind its TLS proxy; without it
# every request would answer 301 to https. Everything else is the production settings (DEBUG=0).
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE_DB="${SMOKE_DB:-retail_crm_smoke}"
SMOKE_PG="${SMOKE_PG:-postgres://postgres@127.0.0.1:5432}"
SMOKE_PORT="${SMOKE_PORT:-8765}"
BASE="http://127.0.0.1:${SMOKE_PORT}"
WORK="$(mktemp -d)"

export DEBUG=0
export SECRET_KEY="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(64))')"
export ALLOWED_HOSTS="127.0.0.1,localhost"
export DATABASE_URL="${SMOKE_PG}/${SMOKE_DB}"
export REDIS_URL="${SMOKE_REDIS_URL:-redis://127.0.0.1:6379/13}"
export SECURE_SSL_REDIRECT=0
unset WECHAT_PROVIDER WECOM_CLIENT PAYMENT_PROVIDER SMS_PROVIDER OFFICIAL_ACCOUNT_PROVIDER ALLOW_FAKE_PROVIDERS_IN_PRODUCTION

GUNICORN_PID=""
cleanup() {
  if [ -n "$GUNICORN_PID" ] && kill -0 "$GUNICORN_PID" 2>/dev/null; then
    kill "$GUNICORN_PID"
    wait "$GUNICORN_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "collectstatic, as the Dockerfile runs it (DEBUG=0, manifest storage)"
rm -rf staticfiles
DEBUG=0 SECRET_KEY=build-time-collectstatic-only .venv/bin/python manage.py collectstatic --noinput >/dev/null
test -s staticfiles/staticfiles.json || { echo "FAIL: no staticfiles/staticfiles.json manifest"; exit 1; }

echo "fresh database ${SMOKE_DB}"
psql "${SMOKE_PG}/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"${SMOKE_DB}\" WITH (FORCE)" \
  -c "CREATE DATABASE \"${SMOKE_DB}\""
.venv/bin/python manage.py migrate --noinput >/dev/null

echo "gunicorn on ${BASE} (DEBUG=0)"
.venv/bin/gunicorn retail_crm.wsgi --bind "127.0.0.1:${SMOKE_PORT}" --workers 2 --access-logfile - \
  >"$WORK/gunicorn.log" 2>&1 &
GUNICORN_PID=$!
for _ in $(seq 1 60); do
  curl -fs -o /dev/null "$BASE/healthz" && break
  kill -0 "$GUNICORN_PID" 2>/dev/null || { cat "$WORK/gunicorn.log"; echo "FAIL: gunicorn exited"; exit 1; }
  sleep 0.5
done

FAILURES=0
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }

# expect PATH STATUS [LOCATION-PREFIX]: the status, and for redirects where they point.
expect() {
  local path="$1" want="$2" location="${3:-}" got
  got="$(curl -s -o "$WORK/body" -D "$WORK/headers" -w '%{http_code} %{redirect_url}' "$BASE$path")"
  local status="${got%% *}" redirect="${got#* }"
  if [ "$status" != "$want" ]; then
    fail "$path answered $status, expected $want"
    head -c 600 "$WORK/body"; echo
    return
  fi
  if [ -n "$location" ] && [[ "$redirect" != "$BASE$location"* ]]; then
    fail "$path redirects to '$redirect', expected $location…"
    return
  fi
  echo "ok  $status $path${redirect:+ -> $redirect}"
}

# has_header NAME: the last response carried the header.
has_header() {
  grep -qi "^$1:" "$WORK/headers" || fail "no $1 header on the last response"
}

expect /healthz 200
expect /accounts/login/ 200
has_header Content-Security-Policy
has_header Permissions-Policy
# The page links the hashed name from the manifest, and whitenoise serves that name.
app_css="$(.venv/bin/python -c 'import json; print(json.load(open("staticfiles/staticfiles.json"))["paths"]["css/app.css"])')"
grep -q "/static/${app_css}" "$WORK/body" || fail "the login page does not link /static/${app_css}"
expect /hq/ 302 /accounts/login/?next=/hq/
expect /workbench/ 302 /accounts/login/?next=/workbench/
expect /admin/login/ 200
expect /api/docs/ 200
expect /api/schema/ 200
expect "/static/${app_css}" 200
grep -qi '^content-type: text/css' "$WORK/headers" || fail "/static/${app_css} is not served as text/css"
expect /static/css/app.css 200
expect /no-such-page/ 404
grep -q 'data-status="404"' "$WORK/body" || fail "the 404 is not our error page"

if grep -q "Traceback" "$WORK/gunicorn.log"; then
  cat "$WORK/gunicorn.log"
  fail "gunicorn logged a traceback"
fi

if [ "$FAILURES" -ne 0 ]; then
  echo "production smoke: $FAILURES failure(s)"
  exit 1
fi
echo "production smoke passed"
