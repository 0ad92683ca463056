#!/usr/bin/env bash
# Run ccxt's own exchange test suite (ccxt/test/tests_init.py, the one shipped in the pip package)
# for `cryptocom` (default) or `binance` (EXCHANGE=binance) against the tps19 simulated exchange
# (its Crypto.com or Binance dialect), and print a per-method table plus
# "N passed, M failed, K skipped".
#
#   tools/ccxt_suite/run_suite.sh PORT [--funded] [--sync]
#   EXCHANGE=binance SRC_VENV=.venv tools/ccxt_suite/run_suite.sh 18765
#
# If nothing listens on 127.0.0.1:PORT a fresh sim is started there (tps19 exchange --seed $SEED)
# and stopped (by its PID) at the end; otherwise the running sim is used (its account state,
# e.g. accumulated fills, carries over between runs).
# Phases (logs in $SUITE/logs/<phase>.log):
#   strict-loadMarkets  loadMarkets test with the exchange's own `has` (swap/future true)
#   rest-public         public REST tests, symbol BTC/USDT; keys.json declares has.swap/future
#                       false (the sim lists spot markets only) so the run is not stopped
#   (seed)              sim_client.py seed: open + cancelled + filled orders in the account
#   ws-public           --ws public watch* tests
#   ws-private          --ws --private --privateOnly, with sim_client.py activity in background
#   rest-private        --private --privateOnly (after ws-private: account has many fills)
#   funded (--funded)   createOrder test (--fundedTests)
#   rest-sync (--sync)  tests_sync.py variant: public + private REST
# Environment: SUITE (/tmp/ccxt-suite), PY (/tmp/ccxt-suite-venv/bin/python),
#   SRC_VENV (a venv with ccxt and the tps19 CLI), SEED (7),
#   WS_TIMEOUT (80 s per ws phase), REST_TIMEOUT (240 s per REST phase).
set -u
PORT="${1:?usage: run_suite.sh PORT [--funded] [--sync]}"; shift
FUNDED=0; SYNC=0
for a in "$@"; do case "$a" in --funded) FUNDED=1;; --sync) SYNC=1;; *) echo "unknown option $a" >&2; exit 2;; esac; done
SUITE="${SUITE:-/tmp/ccxt-suite}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC_VENV="${SRC_VENV:?set SRC_VENV to a venv with tps19 and ccxt installed}"
VENV="${VENV:-/tmp/ccxt-suite-venv}"
PY="${PY:-$VENV/bin/python}"
SEED="${SEED:-7}"
EXCHANGE="${EXCHANGE:-cryptocom}"
case "$EXCHANGE" in cryptocom) DIALECT=cryptocom; PROBE=/exchange/v1/public/get-instruments;;
  binance) DIALECT=binance; PROBE=/api/v3/ping;; *) echo "EXCHANGE must be cryptocom or binance" >&2; exit 2;; esac
export SUITE_EXCHANGE="$EXCHANGE"
WS_TIMEOUT="${WS_TIMEOUT:-80}"
REST_TIMEOUT="${REST_TIMEOUT:-240}"
LOGS="$SUITE/logs"
SITE="$SRC_VENV/lib/python3.11/site-packages"
TESTDIR="$SUITE/python/ccxt/test"
export PYTHONPATH="$SUITE/python"
mkdir -p "$LOGS"

# --- setup (idempotent) -----------------------------------------------------------------------
# ccxt's tests_helpers.py refuses to run against a ccxt imported from site-packages, and its
# get_root_dir() is <ccxt>/test/../../../ : so run a copy at $SUITE/python/ccxt, root = $SUITE
if [ ! -f "$TESTDIR/tests_init.py" ]; then
  echo "setup: copying ccxt $(ls -d "$SITE"/ccxt-*.dist-info 2>/dev/null | sed 's/.*ccxt-//;s/.dist-info//') to $SUITE/python/ccxt"
  mkdir -p "$SUITE/python" && cp -a "$SITE/ccxt" "$SUITE/python/" || exit 3
fi
if [ ! -x "$PY" ]; then  # own venv: the source venv's packages via .pth + psutil (ccxt.pro base tests import it)
  echo "setup: creating $VENV"
  "$SRC_VENV/bin/python" -m venv "$VENV" || exit 3
  echo "$SITE" > "$VENV/lib/python3.11/site-packages/zz-src-venv.pth"
fi
"$PY" -c 'import psutil' 2>/dev/null || "$PY" -m pip install -q psutil || exit 3
"$PY" - "$SITE" <<'EOF' || exit 3
import sys, ccxt, os
assert ccxt.__file__.startswith(os.environ['PYTHONPATH']), 'ccxt imported from ' + ccxt.__file__
print('setup: ccxt', ccxt.__version__, 'from', os.path.dirname(ccxt.__file__))
EOF
echo "{\"$EXCHANGE\": {}}" > "$SUITE/skip-tests.json"
# The harness's check_constructor asserts that binance's public URL is the production one; keys.json
# points it at the sim, so that one assertion (about ccxt's constructor, not the venue) is removed
# from the suite's copy. Nothing else of ccxt is changed.
sed -i "s|^\(\s*\)assert exchange.urls\['api'\]\['public'\] == 'https://api.binance.com/api/v3'.*|\1pass  # tps19: URL points at the simulated exchange|" \
  "$TESTDIR/tests_async.py" "$TESTDIR/tests_sync.py"

# --- sim ----------------------------------------------------------------------------------------
SIM_PID=""; ACT_PID=""
cleanup() {
  [ -n "$ACT_PID" ] && kill "$ACT_PID" 2>/dev/null
  if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; echo "sim (pid $SIM_PID) stopped"; fi
}
trap cleanup EXIT
up() { curl -sf -m 2 -o /dev/null "http://127.0.0.1:$PORT$PROBE"; }
if up; then
  echo "using the sim already listening on 127.0.0.1:$PORT"
else
  "$SRC_VENV/bin/tps19" exchange --dialect "$DIALECT" --host 127.0.0.1 --port "$PORT" --seed "$SEED" > "$LOGS/sim.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 1 50); do up && break; sleep 0.2; done
  up || { echo "sim did not start, see $LOGS/sim.log"; exit 3; }
  echo "started sim pid $SIM_PID on 127.0.0.1:$PORT (seed $SEED)"
fi

keys() { "$PY" "$HERE/make_keys.py" "$SUITE" "$PORT" --id "$EXCHANGE" "$@" > /dev/null || exit 3; }
runner() {  # phase timeout args...
  local phase="$1" t="$2"; shift 2
  echo "--- $phase: tests_init.py $*"
  ( cd "$TESTDIR" && timeout "$t" "$PY" tests_init.py "$@" ) > "$LOGS/$phase.log" 2>&1
  local rc=$?; [ $rc -eq 124 ] && echo "    (timed out after ${t}s)"
  PHASES+=("$phase=$LOGS/$phase.log")
}
PHASES=()

keys
runner strict-loadMarkets "$REST_TIMEOUT" $EXCHANGE 'loadMarkets()' --info
keys --spot-only
runner rest-public "$REST_TIMEOUT" $EXCHANGE BTC/USDT --info
"$PY" "$HERE/sim_client.py" seed "$PORT" > "$LOGS/seed.log" 2>&1 || echo "seed failed, see $LOGS/seed.log"
runner ws-public "$WS_TIMEOUT" $EXCHANGE BTC/USDT --info --ws
keys --spot-only --private
"$PY" "$HERE/sim_client.py" activity "$PORT" $((WS_TIMEOUT + 10)) > "$LOGS/activity.log" 2>&1 &
ACT_PID=$!
runner ws-private "$WS_TIMEOUT" $EXCHANGE BTC/USDT --info --ws --private --privateOnly
kill "$ACT_PID" 2>/dev/null; wait "$ACT_PID" 2>/dev/null; ACT_PID=""
runner rest-private "$REST_TIMEOUT" $EXCHANGE BTC/USDT --info --private --privateOnly
if [ $FUNDED -eq 1 ]; then runner funded "$REST_TIMEOUT" $EXCHANGE 'createOrder()' --info --private --privateOnly --fundedTests; fi
if [ $SYNC -eq 1 ]; then runner rest-sync "$REST_TIMEOUT" $EXCHANGE BTC/USDT --info --private --sync; fi
keys  # leave a public-only keys.json behind

echo
"$PY" "$HERE/summarize.py" "${PHASES[@]}" | tee "$LOGS/summary.txt"
exit "${PIPESTATUS[0]}"
