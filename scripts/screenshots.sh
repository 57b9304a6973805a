#!/usr/bin/env bash
# Screenshots of the License Usage page with a demo load, for anyone to
# look at without setting anything up: builds seatbroker, starts it with a
# throwaway redis-server on free loopback ports, puts simulated desktop and
# remote clients on it (scripts/demoload), saves PNGs of the main views into
# ./screenshots/ (scripts/shots, headless Chromium) and stops everything.
#
# Needs: go, redis-server, chromium (apt-get install redis-server chromium).
# Why not the in-process demo Redis: the simulated clients act as a second
# broker node on the node's Redis, which they cannot reach inside the demo
# process.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-screenshots}

for bin in redis-server /usr/bin/chromium; do
  command -v "$bin" >/dev/null || { echo "screenshots: $bin is missing (apt-get install redis-server chromium)"; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # command... : retry for ~10 s
  for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "screenshots: gave up waiting for: $*"; return 1
}

echo "building"
go build -o "$work/seatbroker" ./cmd/seatbroker
go build -o "$work/demoload" ./scripts/demoload
go build -o "$work/shots" ./scripts/shots

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --loglevel warning >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for redis-cli -p "$rport" ping

port=$(free_port)
url="http://127.0.0.1:$port"
"$work/seatbroker" -listen "127.0.0.1:$port" -redis-url "redis://127.0.0.1:$rport/0" \
  -init-account demo -init-owner owner -init-password demo-password -init-seats 3 \
  -notice 90s -log-level warn &
pids+=($!)
wait_for curl -fsS "$url/readyz"

echo "demo load"
"$work/demoload" -url "$url" -redis-url "redis://127.0.0.1:$rport/0" -account demo -password demo-password

echo "screenshots into $out/"
"$work/shots" -url "$url" -out "$out" -account demo -user admin -password demo-password
