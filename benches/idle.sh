#!/usr/bin/env bash
# What an idle front desk costs: starts the release binary with the config `frontdesk init`
# writes (and, second, `frontdesk demo`), waits until it is ready, lets it settle, then
# over a window counts from /proc/PID/io and /proc/PID/stat its write syscalls, the bytes
# it sends to storage and its CPU time, and with strace attached its fsync/fdatasync calls.
# Usage: benches/idle.sh [WINDOW_SECONDS=60] [SETTLE_SECONDS=60]
# (FRONTDESK_BIN=path measures another build, e.g. an older release for a before/after.)
set -euo pipefail
cd "$(dirname "$0")/.."
window="${1:-60}"
settle="${2:-60}"
bin="${FRONTDESK_BIN:-target/release/frontdesk}"
[ -x "$bin" ] || cargo build --release --bin frontdesk
command -v strace >/dev/null || { echo "strace is needed (apt-get install strace)" >&2; exit 1; }
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
tck="$(getconf CLK_TCK)"

field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/io"; }
cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

measure() { # name pid
  local name="$1" pid="$2"
  sleep "$settle"
  strace -f -qq -c -e trace=fsync,fdatasync -p "$pid" -o "$tmp/$name.strace" &
  local st=$!
  sleep 1
  local w0 s0 c0 w1 s1 c1
  w0="$(field "$pid" write_bytes)"; s0="$(field "$pid" syscw)"; c0="$(cpu "$pid")"
  sleep "$window"
  w1="$(field "$pid" write_bytes)"; s1="$(field "$pid" syscw)"; c1="$(cpu "$pid")"
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  local fsyncs
  fsyncs="$(awk '$NF ~ /sync/ && $4 ~ /^[0-9]+$/ { n += $4 } END { print n + 0 }' "$tmp/$name.strace")"
  awk -v n="$name" -v w="$window" -v dw="$((w1 - w0))" -v ds="$((s1 - s0))" -v dc="$((c1 - c0))" -v t="$tck" -v f="$fsyncs" \
    'BEGIN { printf "| %s | %.1f | %.0f | %.2f %% | %.2f |\n", n, ds / w, dw / w, 100 * dc / t / w, f / w }'
}

wait_ready() { # base
  for _ in $(seq 1 600); do
    curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2; exit 1
}

echo "idle window ${window} s after ${settle} s settled; $(nproc) cores"
echo
echo "| mode | write syscalls/s | bytes to storage/s | CPU (share of one core) | fsync+fdatasync/s |"
echo "|---|---|---|---|---|"

# 1. serve with the config init writes.
"$bin" init --data-dir "$tmp/data" --config "$tmp/config.toml" >/dev/null
FRONTDESK__SERVER__LISTEN=127.0.0.1:0 FRONTDESK__WHATSAPP__APP_SECRET=idle-bench-secret \
  "$bin" serve --config "$tmp/config.toml" >"$tmp/serve.out" 2>"$tmp/serve.err" &
pids+=($!)
serve_pid=$!
for _ in $(seq 1 600); do grep -q "listening on" "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
wait_ready "http://$(sed -n 's/^frontdesk listening on //p' "$tmp/serve.out" | head -1)"
measure "serve (init's config)" "$serve_pid"
kill -TERM "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

# 2. the demo (server + fake Graph API + simulator in one process).
"$bin" demo --data-dir "$tmp/demo" --listen 127.0.0.1:0 >"$tmp/demo.out" 2>"$tmp/demo.err" &
pids+=($!)
demo_pid=$!
for _ in $(seq 1 600); do grep -q "listening on" "$tmp/demo.out" 2>/dev/null && break; sleep 0.1; done
wait_ready "http://$(sed -n 's/^frontdesk listening on //p' "$tmp/demo.out" | head -1)"
measure "demo" "$demo_pid"
