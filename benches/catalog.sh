#!/usr/bin/env bash
# Catalogue benchmark: one daemon serving 1, 10 and 100 datasets of 10,000 series each, against
# node_exporter's textfile collector and a static in-memory server on the same exposition.
#
# Usage:
#   benches/catalog.sh                        # builds the release binaries, then every size
#   DATASETS="1 10" benches/catalog.sh        # chosen catalogue sizes only
#
# Environment (all optional):
#   DATASETS        catalogue sizes to run (default "1 10 100")
#   SERIES          series per dataset (default 10000)
#   RELOADS         reloads of one dataset measured per size (default 5)
#   SCRAPES         gzip scrapes measured per server and size (default 5)
#   PORT            first of three consecutive ports on 127.0.0.1 (default 18915)
#   OUT             where catalogues, exposition files and logs go (default benches/out/catalog)
#   NO_BUILD=1      use the binaries already in $CARGO_TARGET_DIR (default target/release)
#   NODE_EXPORTER   node_exporter binary (default /usr/bin/prometheus-node-exporter)
#
# Needs bash, curl, gzip, python3 and node_exporter (scripts/install-deps --bench). Everything
# listens on 127.0.0.1 only; every server started here is stopped on exit. A full run takes
# about three minutes on 2 cores.
#
# For each size: benches/generate.py --datasets N writes a catalogue (a main config whose
# [catalog] directory holds one config file per dataset); the exporter serves it with
# --config.watch; its text-format /metrics minus the exporter's own families
# (indicator_exporter_*, process_*) becomes the .prom file that node_exporter
# (--collector.textfile) and the static server (benches/static_server.rs) serve. Measured:
#   start      from launching the exporter to /-/ready answering 200 (every dataset loaded)
#   reload     one dataset's config file changed on disk (a comment appended): the reload of
#              that dataset alone, as indicator_exporter_dataset_last_load_duration_seconds
#              reports it (read, validate, render, compress), median of RELOADS
#   scrape     one gzip scrape with curl (median of SCRAPES, after one unmeasured), and its
#              bytes, for each server, measured one at a time once the exporter is idle (its
#              bodies settled at their final level); the static server's are gzip level 9
# Ratios: exporter / node_exporter and exporter / static, for scrape time and gzip bytes.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATASETS=${DATASETS:-"1 10 100"}
SERIES=${SERIES:-10000}
RELOADS=${RELOADS:-5}
SCRAPES=${SCRAPES:-5}
PORT=${PORT:-18915}
OUT=${OUT:-$ROOT/benches/out/catalog}
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
EXPORTER=$TARGET_DIR/release/indicator_exporter
STATIC=$TARGET_DIR/release/examples/static_server
HOST=127.0.0.1
DEADLINE=180 # seconds a server may take to start, or a reload to show

ROWS=() # one result line per size, printed as a table at the end

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
prepare curl gzip python3

# wait_status NAME PID URL STATUS: polls URL until it answers STATUS ("any" for any answer),
# while PID lives.
wait_status() {
	local name=$1 pid=$2 url=$3 want=$4 code
	local deadline=$((SECONDS + DEADLINE))
	while ((SECONDS < deadline)); do
		kill -0 "$pid" 2>/dev/null || die "$name exited during start-up (see $OUT/logs)"
		code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$url" || true)
		if [[ $want == any && $code != 000 ]] || [[ $code == "$want" ]]; then
			return 0
		fi
		sleep 0.05 # next poll
	done
	die "$name did not answer $url with $want within ${DEADLINE}s"
}

# scrape_once URL: prints "seconds bytes" of one gzip scrape; fails on a non-200 answer.
scrape_once() {
	local r
	r=$(curl -s -o /dev/null --max-time 300 -H 'Accept-Encoding: gzip' \
		-w '%{http_code} %{time_total} %{size_download}' "$1") || die "scrape of $1 failed"
	[[ ${r%% *} == 200 ]] || die "scrape of $1 answered ${r%% *}"
	echo "${r#* }"
}

# scrape_median URL: prints "ms bytes": the median time of SCRAPES gzip scrapes after one
# unmeasured, and the bytes of the last.
scrape_median() {
	local url=$1 i r times=()
	scrape_once "$url" >/dev/null
	for ((i = 0; i < SCRAPES; i++)); do
		r=$(scrape_once "$url")
		times+=("${r% *}")
	done
	echo "$(printf '%s\n' "${times[@]}" | median | awk '{printf "%.1f", $1 * 1000}') ${r#* }"
}

median() {
	sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3g", a / b; else print "n/a" }'
}

# reloads_of LOG DATASET: how many reloads of DATASET the exporter has logged.
reloads_of() {
	grep -c "msg=\"dataset reloaded\" dataset=$2 " "$1" || true
}

# load_seconds URL DATASET LOADS: the duration of the dataset's last load, from the exporter's
# metrics, once they count LOADS successful loads of it (the log line comes just before).
load_seconds() {
	local url=$1 name=$2 loads=$3 out
	local deadline=$((SECONDS + DEADLINE))
	while ((SECONDS < deadline)); do
		out=$(curl -s --max-time 300 -H 'Accept-Encoding: gzip' "$url" | gzip -dc |
			awk -v d="{dataset=\"$name\"}" -v ok="{dataset=\"$name\",result=\"success\"}" '
				$1 == "indicator_exporter_dataset_last_load_duration_seconds" d { s = $2 }
				$1 == "indicator_exporter_dataset_loads_total" ok { n = $2 }
				END { print n + 0, s }') || die "scrape of $url failed"
		if ((${out%% *} >= loads)) && [[ -n ${out#* } ]]; then
			echo "${out#* }"
			return 0
		fi
		sleep 0.05 # next poll
	done
	die "$url did not count $loads loads of $name within ${DEADLINE}s"
}

run_size() {
	local n=$1
	local dir=$OUT/$n
	local p_exp=$PORT p_node=$((PORT + 1)) p_static=$((PORT + 2))
	echo
	echo "=== $n datasets of $SERIES series ($(date -u +%H:%M:%S)) ==="
	python3 "$ROOT/benches/generate.py" "$SERIES" "$dir" --datasets "$n" >/dev/null

	local log=$OUT/logs/exporter-$n.log
	local started=$EPOCHREALTIME
	"$EXPORTER" --config.file "$dir/config.toml" --config.watch \
		--web.listen-address="$HOST:$p_exp" >"$log" 2>&1 &
	local pid_exp=$!
	PIDS+=("$pid_exp")
	wait_status exporter "$pid_exp" "http://$HOST:$p_exp/-/ready" 200
	local start_ms
	start_ms=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", (b - a) * 1000}')

	# Reloads of the middle dataset, one at a time, each waited for in the log.
	local i=$(((n + 1) / 2)) r before deadline times=()
	local name file
	name=$(printf 'bench_survey_%03d' "$i")
	file=$(printf '%s/datasets.d/d%03d.toml' "$dir" "$i")
	for ((r = 1; r <= RELOADS; r++)); do
		before=$(reloads_of "$log" "$name")
		echo "# reload $r" >>"$file"
		deadline=$((SECONDS + DEADLINE))
		while (($(reloads_of "$log" "$name") == before)); do
			((SECONDS < deadline)) || die "$name not reloaded within ${DEADLINE}s (see $log)"
			kill -0 "$pid_exp" 2>/dev/null || die "exporter exited (see $log)"
			sleep 0.05 # next poll
		done
		# The start-up load was the first.
		times+=("$(load_seconds "http://$HOST:$p_exp/metrics" "$name" $((r + 1)))")
	done
	local reload_ms
	reload_ms=$(printf '%s\n' "${times[@]}" | median | awk '{printf "%.1f", $1 * 1000}')

	serve_references "$n" "$dir" "http://$HOST:$p_exp/metrics" "$p_node" "$p_static"
	local prom=$REF_PROM pid_node=$REF_NODE_PID pid_static=$REF_STATIC_PID
	wait_status node_exporter "$pid_node" "http://$HOST:$p_node/" any
	wait_status static_server "$pid_static" "http://$HOST:$p_static/" any

	local series lines
	series=$((n * SERIES))
	lines=$(wc -l <"$prom")
	printf 'catalogue: %s; .prom: %s lines, %.1f MiB; start: %s ms; reload of %s: %s ms\n' \
		"$dir/config.toml" "$lines" "$(awk -v b="$(stat -c %s "$prom")" 'BEGIN {print b / 1048576}')" \
		"$start_ms" "$name" "$reload_ms"

	# The reloaded dataset's bodies settle at their final level off the load path.
	wait_idle "$pid_exp"
	local exp node stat
	exp=$(scrape_median "http://$HOST:$p_exp/metrics")
	stat=$(scrape_median "http://$HOST:$p_static/metrics")
	node=$(scrape_median "http://$HOST:$p_node/metrics")
	echo "gzip scrape ms and bytes: exporter $exp, static $stat, node_exporter $node"
	ROWS+=("$n $series $start_ms $reload_ms $exp $stat $node")
	cleanup
}

echo "catalog.sh: $(nproc) CPUs, $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $("$NODE_EXPORTER" --version 2>&1 | head -n1)"
for n in $DATASETS; do
	run_size "$n"
done

echo
printf '| %8s | %9s | %8s | %9s | %11s | %8s | %11s | %8s | %11s | %8s | %10s | %10s | %10s | %10s |\n' \
	datasets series "start ms" "reload ms" "exp scrape" "exp KiB" "static scr." "st. KiB" \
	"node scrape" "node KiB" "scr./node" "KiB/node" "scr./stat." "KiB/stat."
printf '|%s|\n' "---------:|----------:|---------:|----------:|------------:|---------:|------------:|---------:|------------:|---------:|-----------:|-----------:|-----------:|-----------:"
for row in "${ROWS[@]}"; do
	read -r n series start reload e_ms e_b s_ms s_b n_ms n_b <<<"$row"
	printf '| %8s | %9s | %8s | %9s | %11s | %8s | %11s | %8s | %11s | %8s | %10s | %10s | %10s | %10s |\n' \
		"$n" "$series" "$start" "$reload" "$e_ms" "$(awk -v b="$e_b" 'BEGIN {printf "%.0f", b / 1024}')" \
		"$s_ms" "$(awk -v b="$s_b" 'BEGIN {printf "%.0f", b / 1024}')" \
		"$n_ms" "$(awk -v b="$n_b" 'BEGIN {printf "%.0f", b / 1024}')" \
		"$(ratio "$e_ms" "$n_ms")" "$(ratio "$e_b" "$n_b")" "$(ratio "$e_ms" "$s_ms")" "$(ratio "$e_b" "$s_b")"
done
echo
echo "datasets of $SERIES series each; start: launch to /-/ready 200; reload: one dataset's"
echo "config file changed (--config.watch), its indicator_exporter_dataset_last_load_duration_seconds,"
echo "median of $RELOADS; scrape columns: one gzip scrape with curl, ms (median of $SCRAPES) and KiB"
echo "(the exporter's include its own metrics); ratios: exporter / node_exporter and"
echo "exporter / static server (gzip level 9), for scrape time and gzip bytes."
