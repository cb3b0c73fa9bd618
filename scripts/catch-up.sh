#!/usr/bin/env bash
# How fast `tracker serve` catches up a Kafka backlog into its store: decoded,
# matched, ETA-updated and durably stored, positions/s, end to end.
#
#   scripts/catch-up.sh BINARY MAP STORE_URL [VEHICLES] [SECONDS] [PORT]
#
# 1. Makes a tenant in STORE_URL (`tracker tenant create`); STORE_URL should be
#    a fresh store: a new SQLite file, or a new PostgreSQL schema.
# 2. Starts `serve` on the in-process bus (the API only, no demo fleet), and
#    runs `tracker simulate --create-orders` with VEHICLES trucks (default
#    2000) for SECONDS of real time (default 60) at 60× speed: an order per
#    trip through the API, the positions onto a new topic of the broker at
#    $KAFKA (default 127.0.0.1:19092, 4 partitions). Then stops `serve`.
# 3. Starts `serve` again on that topic with a new consumer group, so it reads
#    the whole backlog, and polls its /metrics every 200 ms until the count of
#    positions received from Kafka has not moved for $IDLE_S seconds (default
#    20: a slow store's first flushes, every order's first ETA, take several
#    seconds, and the count moves only when a batch is taken). Prints the positions
#    received, the seconds from the first to the last one counted, the rate,
#    and the seconds each stage of the pipeline took in all
#    (`tracker_stage_seconds`).
#
# With NODES=N (default 1), step 3 starts N `serve` nodes in the one consumer
# group (ports PORT, PORT+1, …; the topic's 4 partitions split between them),
# counts the positions all of them received, and prints each node's stages.
# Several nodes need a store they can share: PostgreSQL (the embedded SQLite
# store is one node's); they share traffic through the topic TOPIC-fleet and
# fan out through Redis at $REDIS (default redis://127.0.0.1:6379), as a real
# multi-node set-up does.
#
# Everything stays on 127.0.0.1. The serve logs are kept in the printed folder.
set -euo pipefail
usage="usage: catch-up.sh BINARY MAP STORE_URL [VEHICLES] [SECONDS] [PORT]"
bin=${1:?$usage}
map=${2:?$usage}
store=${3:?$usage}
vehicles=${4:-2000}
seconds=${5:-60}
port=${6:-18472}
kafka=${KAFKA:-127.0.0.1:19092}
idle_ms=$(( ${IDLE_S:-20} * 1000 ))
nodes=${NODES:-1}
topic="catch-up-$(date +%s)-$RANDOM"
work=$(mktemp -d)
echo "logs in $work" >&2

wait_ready() {
    local pid=$1 at=${2:-$port}
    for _ in $(seq 1 600); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "serve exited early; see $work" >&2
            exit 1
        fi
        if curl -sf -o /dev/null "http://127.0.0.1:$at/readyz"; then
            return 0
        fi
        sleep 0.1
    done
    echo "serve not ready after 60 s; see $work" >&2
    exit 1
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

created=$("$bin" tenant create "Catch-up $topic" --store "$store")
tenant=$(jq -r .tenant_id <<<"$created")
key=$(jq -r .api_key <<<"$created")

echo "==> orders and a backlog: $vehicles trucks, ${seconds}s at 60x onto $topic" >&2
"$bin" serve --map "$map" --listen "127.0.0.1:$port" --store "$store" --demo 0 \
    >"$work/api.log" 2>&1 &
api=$!
wait_ready "$api"
TRACKER_API_KEY="$key" "$bin" simulate --map "$map" --vehicles "$vehicles" --speedup 60 \
    --duration "$seconds" --to "kafka://$kafka/$topic" --tenant "$tenant" --partitions 4 \
    --create-orders --api-url "http://127.0.0.1:$port" >"$work/simulate.log" 2>&1
stop "$api"

echo "==> $nodes serve node(s) catching up the backlog" >&2
multi=()
if [ "$nodes" -gt 1 ]; then
    multi=(--fleet-topic "$topic-fleet" --fanout "${REDIS:-redis://127.0.0.1:6379}")
fi
pids=()
for i in $(seq 0 $((nodes - 1))); do
    "$bin" serve --map "$map" --listen "127.0.0.1:$((port + i))" --store "$store" --demo 0 \
        --bus "kafka://$kafka/$topic" --kafka-group "catch-up-$topic" "${multi[@]}" \
        >"$work/serve-$i.log" 2>&1 &
    pids+=($!)
done
trap 'for p in "${pids[@]}"; do stop "$p"; done' EXIT
for i in $(seq 0 $((nodes - 1))); do
    wait_ready "${pids[$i]}" $((port + i))
done
# Positions received from Kafka, summed over the nodes.
received() {
    local total=0 n
    for i in $(seq 0 $((nodes - 1))); do
        n=$(curl -sf "http://127.0.0.1:$((port + i))/metrics" |
            awk '/^tracker_positions_total\{/ && /source="kafka"/ && /outcome="received"/ { n += $NF }
                 END { printf "%d\n", n }') || return 1
        total=$((total + n))
    done
    echo "$total"
}
first_ms=""
first_n=0
last_n=0
last_ms=0
still_since=$(date +%s%3N)
while true; do
    now=$(date +%s%3N)
    n=$(received || echo 0)
    if [ "$n" -gt "$last_n" ]; then
        if [ -z "$first_ms" ]; then
            first_ms=$now
            first_n=$n
        fi
        last_n=$n
        last_ms=$now
        still_since=$now
    elif [ $((now - still_since)) -gt "$idle_ms" ] && [ -n "$first_ms" ]; then
        break
    elif [ $((now - still_since)) -gt 120000 ]; then
        echo "nothing received from Kafka in 120 s; see $work" >&2
        exit 1
    fi
    sleep 0.2
done
span_ms=$((last_ms - first_ms))
counted=$((last_n - first_n))
if [ "$span_ms" -le 0 ]; then
    echo "the backlog ($last_n positions) was read within one poll; use more SECONDS" >&2
    exit 1
fi
rate=$((counted * 1000 / span_ms))
echo "received $last_n positions; $counted of them in ${span_ms} ms after the first poll: $rate positions/s"
# Where the time went: the seconds each pipeline stage took in all, per node.
for i in $(seq 0 $((nodes - 1))); do
    [ "$nodes" -gt 1 ] && echo "  node $i (port $((port + i))):"
    curl -sf "http://127.0.0.1:$((port + i))/metrics" |
        awk '/^tracker_stage_seconds_sum\{/ { match($0, /stage="[^"]*"/);
             printf "  stage %s: %.1f s\n", substr($0, RSTART + 7, RLENGTH - 8), $NF }'
done
