#!/usr/bin/env bash
# Release binary size and cold start: time from exec to the first 200 from /readyz, with
# the embedding model (the default) and without it (knowledge.embedder = "none"), on a
# fresh data dir and again on the existing one. Median of 5 runs each.
# Usage: benches/cold_start.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin frontdesk --quiet
./scripts/fetch-model
bin=target/release/frontdesk
echo "| measure | value |"
echo "|---|---|"
echo "| release binary size | $(du -b "$bin" | cut -f1 | awk '{printf "%.1f MB", $1/1e6}') |"
run() { # $1 = embedder, $2 = fresh|existing; prints ms to ready
  local dir=$3
  [ "$2" = fresh ] && rm -rf "$dir/data"
  FRONTDESK__STORAGE__DATA_DIR="$dir/data" FRONTDESK__WHATSAPP__APP_SECRET=s FRONTDESK__WHATSAPP__VERIFY_TOKEN=v \
    FRONTDESK__SERVER__LISTEN=127.0.0.1:0 FRONTDESK__KNOWLEDGE__EMBEDDER="$1" FRONTDESK_LOG=error \
    "$bin" serve --config /dev/null >"$dir/out" 2>"$dir/err" &
  local pid=$! start; start=$(date +%s%N)
  local addr=""
  while [ -z "$addr" ]; do addr=$(sed -n 's/^frontdesk listening on //p' "$dir/out"); done
  until curl -fs "http://$addr/readyz" >/dev/null; do :; done
  echo $(( ($(date +%s%N) - start) / 1000000 ))
  kill -TERM $pid; wait $pid
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for embedder in none local; do
  for state in fresh existing; do
    ms=$(for _ in 1 2 3 4 5; do run "$embedder" "$state" "$tmp"; done | median)
    echo "| cold start to /readyz, embedder $embedder, $state data dir (median of 5) | $ms ms |"
  done
done
