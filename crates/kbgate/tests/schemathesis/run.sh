#!/usr/bin/env bash
# Checks the running service against its own OpenAPI document with schemathesis (PyPI,
# pinned in requirements.txt next to this file):
#
#   bash crates/kbgate/tests/schemathesis/run.sh
#
# Builds kbgate and confluence-sim (debug; KBGATE_BIN / SIM_BIN = paths skip the build),
# starts the simulator with a small seeded site, mirrors it with `kbgate sync`, starts
# `kbgate serve --no-sync`, and runs schemathesis against /api/v1/openapi.json with the host
# app's API key, naming a person the policy admits. Checks: no 5xx, and every response's
# status, content type, headers and body conform to the document. A bounded number of
# examples per operation (ST_MAX_EXAMPLES, default 100) and a fixed seed keep it short and
# repeatable. The venv is cached under target/thirdparty (THIRDPARTY_CACHE), keyed by the
# hash of requirements.txt. Exits non-zero on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../../.." && pwd)"
CACHE="${THIRDPARTY_CACHE:-$ROOT/target/thirdparty}"
PYTHON="${PYTHON:-python3}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-100}"
API_KEY="schemathesis-api-key-0123456789abcdefghijklmnop"

started=$(date +%s)
mkdir -p "$CACHE"
WORK="$(mktemp -d)"
SIM_PID=""
KB_PID=""
stop() { # pid
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$KB_PID"
  stop "$SIM_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# --- binaries ---------------------------------------------------------------------------------
if [ -z "${KBGATE_BIN:-}" ] || [ -z "${SIM_BIN:-}" ]; then
  echo "== building kbgate and confluence-sim (debug)"
  (cd "$ROOT" && cargo build -q -p kbgate -p confluence-sim)
fi
KBGATE_BIN="${KBGATE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/kbgate}"
SIM_BIN="${SIM_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/confluence-sim}"

# --- schemathesis (pinned, cached) ------------------------------------------------------------
KEY="$(sha256sum "$HERE/requirements.txt" | cut -c1-16)"
VENV="$CACHE/schemathesis-$KEY"
if [ ! -x "$VENV/bin/schemathesis" ] || [ ! -f "$VENV/.complete" ]; then
  echo "== installing schemathesis into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$HERE/requirements.txt"
  touch "$VENV/.complete"
fi

# --- the simulated site, mirrored -------------------------------------------------------------
"$SIM_BIN" --port 0 --seed schemathesis --spaces 3 --pages 120 --users 20 --domains 3 \
  >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 1 300); do
  if grep -q '^site: ' "$WORK/sim.out" 2>/dev/null; then break; fi
  kill -0 "$SIM_PID" 2>/dev/null || { cat "$WORK/sim.err" >&2; exit 1; }
  sleep 0.1
done
SIM_BASE="$(sed -n 's/^listening on //p' "$WORK/sim.out")"
read -r CONF_EMAIL CONF_TOKEN < <(sed -n 's/^service account: //p' "$WORK/sim.out")
[ -n "$SIM_BASE" ] || { echo "confluence-sim did not start" >&2; exit 1; }

PORT="$(free_port)"
printf '%s' "$CONF_TOKEN" >"$WORK/token"
printf '%s' "$API_KEY" >"$WORK/api-key"
printf '%s' "schemathesis-embed-secret-0123456789abcdef" >"$WORK/embed-secret"
cat >"$WORK/kbgate.toml" <<TOML
[confluence]
base_url = "$SIM_BASE"
email = "$CONF_EMAIL"
api_token_file = "token"
requests_per_second = 0

[store]
url = "sqlite://kb.db"
data_dir = "data"

[portal]
listen = "127.0.0.1:$PORT"

[embed]
issuer = "https://app.example.com"
audience = "kbgate"
algorithm = "HS256"
secret_file = "embed-secret"
api_key_file = "api-key"

[[audience]]
name = "acme"
domains = ["acme.com"]
spaces = ["KB", "ONBOARD"]

[[audience]]
name = "initech"
domains = ["initech.io"]
spaces = ["API"]

[deny]
domains = ["gmail.com"]
TOML
kb() { (cd "$WORK" && KBGATE_LOG=warn "$KBGATE_BIN" --config kbgate.toml "$@"); }
echo "== kbgate sync"
kb sync >/dev/null
echo "== kbgate serve on 127.0.0.1:$PORT"
(cd "$WORK" && KBGATE_LOG=warn exec "$KBGATE_BIN" --config kbgate.toml serve --no-sync) \
  >"$WORK/serve.log" 2>&1 &
KB_PID=$!
ready=0
for _ in $(seq 1 100); do
  if kb healthcheck --ready --timeout 1s 2>/dev/null; then ready=1; break; fi
  kill -0 "$KB_PID" 2>/dev/null || break
  sleep 0.1
done
[ "$ready" = 1 ] || { echo "kbgate serve did not become ready:" >&2; cat "$WORK/serve.log" >&2; exit 1; }

# --- schemathesis -----------------------------------------------------------------------------
echo "== schemathesis (at most $MAX_EXAMPLES examples per operation)"
rc=0
"$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/api/v1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --header "Authorization: Bearer $API_KEY" \
  --header "X-Kbgate-Email: jane@acme.com" \
  --max-examples "$MAX_EXAMPLES" \
  --seed 20261207 \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  --no-color \
  --warnings off || rc=$?
if grep -q ' 5[0-9][0-9] \|panicked\|internal error' "$WORK/serve.log"; then
  echo "kbgate logged a server error:" >&2
  grep ' 5[0-9][0-9] \|panicked\|internal error' "$WORK/serve.log" >&2
  rc=1
fi
echo "== schemathesis step took $(($(date +%s) - started)) s"
exit "$rc"
