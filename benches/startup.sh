#!/usr/bin/env bash
# Start-up benchmark: the time `--config.check` takes to load a catalogue of 20 datasets whose
# data files are URLs on one loopback publisher that answers each request after 200 ms, with
# the per-host bound at 1 (one fetch after another, as start-up was before fetches ran
# concurrently), at the default 2, and at 20 (no bound for 20 datasets). Prints each time and
# the ratios to the one-after-another time.
#
# Usage:
#   benches/startup.sh               # builds the debug binary (fetching is I/O bound), then runs
#
# Environment (all optional):
#   DATASETS   datasets in the catalogue (default 20)
#   DELAY      the publisher's delay per answer, in seconds (default 0.2)
#   BOUNDS     max_concurrent_per_host values to time (default "1 2 20")
#   RUNS       runs per bound; the fastest is kept (default 2)
#   NO_BUILD=1 use the binary already in $CARGO_TARGET_DIR (default target)/debug
#
# Needs bash and python3. The publisher listens on 127.0.0.1 only and is stopped on exit.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATASETS=${DATASETS:-20}
DELAY=${DELAY:-0.2}
BOUNDS=${BOUNDS:-"1 2 20"}
RUNS=${RUNS:-2}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/debug/indicator_exporter

if [[ -z ${NO_BUILD:-} ]]; then
    (cd "$ROOT" && cargo build --quiet --bin indicator_exporter)
fi

OUT=$(mktemp -d)
PUBLISHER_PID=
cleanup() {
    if [[ -n $PUBLISHER_PID ]]; then kill "$PUBLISHER_PID" 2>/dev/null || true; fi
    rm -rf "$OUT"
}
trap cleanup EXIT

# The publisher: every GET answers the same small CSV after DELAY seconds, many at once.
cat >"$OUT/publisher.py" <<'PY'
import http.server, socketserver, sys, time
delay = float(sys.argv[1])
body = b"area,year,value\nAA,2024,1\n"
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        time.sleep(delay)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
with Server(("127.0.0.1", 0), Handler) as s:
    print(s.server_address[1], flush=True)
    s.serve_forever()
PY
python3 "$OUT/publisher.py" "$DELAY" >"$OUT/port" &
PUBLISHER_PID=$!
for _ in $(seq 100); do [[ -s $OUT/port ]] && break; sleep 0.05; done
PORT=$(cat "$OUT/port")

# One catalogue per bound: DATASETS dataset files, each reading its own URL on the publisher.
catalogue() {
    local bound=$1 dir=$OUT/bound-$1
    mkdir -p "$dir"
    local list=""
    for i in $(seq "$DATASETS"); do
        cat >"$dir/d$i.toml" <<TOML
[dataset]
name = "d$i"
title = "t"
publisher = "p"
source_url = "https://example.org"
published = "2025-01-01"
metric_prefix = "d${i}_"

[fetch]
max_concurrent_per_host = $bound

[[metric]]
name = "widgets"
unit = "count"
help = "Widgets."

[[input]]
file = "http://127.0.0.1:$PORT/d$i.csv"
format = "csv"
metric = "widgets"
TOML
        list+="\"d$i.toml\", "
    done
    echo "[catalog]" >"$dir/main.toml"
    echo "datasets = [${list%, }]" >>"$dir/main.toml"
    echo "$dir/main.toml"
}

# The fastest of RUNS loads of the catalogue, in seconds.
time_check() {
    local main=$1 best=
    for _ in $(seq "$RUNS"); do
        local start end took
        start=$(date +%s.%N)
        "$BIN" --config.check --config.file "$main" >/dev/null
        end=$(date +%s.%N)
        took=$(python3 -c "print(f'{$end - $start:.3f}')")
        if [[ -z $best ]] || python3 -c "import sys; sys.exit(0 if $took < $best else 1)"; then
            best=$took
        fi
    done
    echo "$best"
}

echo "start-up of $DATASETS remote datasets on one host answering in ${DELAY}s each"
declare -A TIMES
for bound in $BOUNDS; do
    TIMES[$bound]=$(time_check "$(catalogue "$bound")")
    printf '  max_concurrent_per_host = %-3s %6ss\n' "$bound" "${TIMES[$bound]}"
done
first=${BOUNDS%% *}
for bound in $BOUNDS; do
    [[ $bound == "$first" ]] && continue
    python3 -c "print(f'  one after another / bound $bound: {${TIMES[$first]} / ${TIMES[$bound]}:.1f}x faster')"
done
