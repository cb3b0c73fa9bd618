#!/usr/bin/env bash
# How soon `tracker serve` is ready: starts it on a map with a fresh SQLite store
# and no demo fleet, and prints the milliseconds from the start of the process to
# the first `/healthz` 200 (the HTTP server is up: the store's own start is done)
# and to the first `/readyz` 200 (the map is loaded and the router ready).
#
#   scripts/time-to-ready.sh BINARY MAP [RUNS] [PORT]
#
# Polls every 2 ms on 127.0.0.1 only; stops the server after each run.
set -euo pipefail
bin=${1:?usage: time-to-ready.sh BINARY MAP [RUNS] [PORT]}
map=${2:?usage: time-to-ready.sh BINARY MAP [RUNS] [PORT]}
runs=${3:-5}
port=${4:-18471}
now_ms() { date +%s%3N; }
for run in $(seq "$runs"); do
    dir=$(mktemp -d)
    start=$(now_ms)
    "$bin" serve --map "$map" --listen "127.0.0.1:$port" --store "sqlite://$dir/tracker.db" \
        --demo 0 >/dev/null 2>"$dir/serve.log" &
    pid=$!
    healthy=""
    ready=""
    while [ -z "$ready" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "serve exited early:" >&2
            cat "$dir/serve.log" >&2
            exit 1
        fi
        if [ -z "$healthy" ] && curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; then
            healthy=$(( $(now_ms) - start ))
        fi
        if curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; then
            ready=$(( $(now_ms) - start ))
        else
            sleep 0.002
        fi
    done
    echo "run $run: healthz ${healthy:-?} ms, readyz $ready ms (map and router: $(sed 's/\x1b\[[0-9;]*m//g' "$dir/serve.log" | grep -o 'elapsed_ms=[0-9]*' | head -1))"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
done
