#!/usr/bin/env bash
# Runs two third-party Confluence Cloud clients, unchanged, against confluence-sim:
# atlassian-python-api (PyPI) and confluence.js (npm), versions pinned next to this file.
#
#   bash crates/confluence-sim/thirdparty/run.sh
#
# Builds the simulator (debug profile unless SIM_PROFILE=release; SIM_BIN=path skips the build),
# starts it on a free port with a fixed seed, installs the clients into a cache directory
# (THIRDPARTY_CACHE, default target/thirdparty: a venv and a node_modules keyed by the hash of
# their pinned lists), runs both check programs, stops the simulator and prints
# "N passed, N failed" as its last line. Exits non-zero on any failure.
#
# SIM_LEGACY_DOWNLOAD_401=1 also asserts that the legacy /wiki/download/attachments/... path
# answers 401 to API tokens (Atlassian CHANGE-2735), once the simulator models it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="${THIRDPARTY_CACHE:-$ROOT/target/thirdparty}"
PROFILE="${SIM_PROFILE:-debug}"
PYTHON="${PYTHON:-python3}"
# A site with one space well over 250 pages (the v2 and v1 paging checks need it).
SIM_ARGS=(--port 0 --seed thirdparty --spaces 3 --pages 900 --users 80 --domains 6)

started=$(date +%s)
mkdir -p "$CACHE"
WORK="$(mktemp -d)"
SIM_PID=""
cleanup() {
  if [ -n "$SIM_PID" ] && kill -0 "$SIM_PID" 2>/dev/null; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- the simulator binary -----------------------------------------------------------------
if [ -z "${SIM_BIN:-}" ]; then
  echo "== building confluence-sim ($PROFILE)"
  if [ "$PROFILE" = release ]; then
    (cd "$ROOT" && cargo build --release -q -p confluence-sim)
  else
    (cd "$ROOT" && cargo build -q -p confluence-sim)
  fi
  SIM_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/confluence-sim"
fi

# --- the clients (pinned, cached) -----------------------------------------------------------
PY_KEY="$(hash_of "$HERE/python/requirements.txt")"
VENV="$CACHE/venv-$PY_KEY"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
  echo "== installing atlassian-python-api into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$HERE/python/requirements.txt"
  touch "$VENV/.complete"
fi

NODE_KEY="$(hash_of "$HERE/node/package.json" "$HERE/node/package-lock.json")"
NODE_DIR="$CACHE/node-$NODE_KEY"
if [ ! -f "$NODE_DIR/.complete" ]; then
  echo "== installing confluence.js into $NODE_DIR"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$HERE/node/package.json" "$HERE/node/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --silent --no-audit --no-fund --engine-strict=false >/dev/null)
  touch "$NODE_DIR/.complete"
fi
cp "$HERE/node/check_confluence_js.mjs" "$NODE_DIR/"

# --- start the simulator --------------------------------------------------------------------
echo "== starting $SIM_BIN ${SIM_ARGS[*]}"
"$SIM_BIN" "${SIM_ARGS[@]}" >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 1 300); do
  if grep -q '^site: ' "$WORK/sim.out" 2>/dev/null; then break; fi
  if ! kill -0 "$SIM_PID" 2>/dev/null; then
    echo "confluence-sim exited early:" >&2
    cat "$WORK/sim.err" >&2
    exit 1
  fi
  sleep 0.1
done
grep -q '^site: ' "$WORK/sim.out" || { echo "confluence-sim did not start" >&2; exit 1; }
SIM_BASE="$(sed -n 's/^listening on //p' "$WORK/sim.out")"
read -r CONF_EMAIL CONF_TOKEN < <(sed -n 's/^service account: //p' "$WORK/sim.out")
export SIM_BASE CONF_EMAIL CONF_TOKEN
export SIM_LEGACY_DOWNLOAD_401="${SIM_LEGACY_DOWNLOAD_401:-1}"
sed -n 's/^site: /== site: /p' "$WORK/sim.out"

# --- run the checks -------------------------------------------------------------------------
passed=0
failed=0
run_check() { # name, command...
  local name="$1"
  shift
  echo "== $name"
  local rc=0
  "$@" | tee "$WORK/out.txt" || rc=$?
  local line
  line="$(grep '^RESULT ' "$WORK/out.txt" | tail -1 || true)"
  if [ -z "$line" ]; then
    echo "FAIL $name: did not finish (exit $rc)"
    failed=$((failed + 1))
  else
    read -r _ p f <<<"$line"
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "FAIL $name: exit $rc"
      failed=$((failed + 1))
    fi
  fi
}
run_check "atlassian-python-api" "$VENV/bin/python" "$HERE/python/check_atlassian_python_api.py"
run_check "confluence.js" node "$NODE_DIR/check_confluence_js.mjs"

echo "== third-party clients took $(($(date +%s) - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
