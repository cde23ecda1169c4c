# What the serving benchmarks (benches/load.sh, benches/catalog.sh) share: the servers they
# start are stopped on exit, errors end the run, the release binaries are built once. Sourced
# after ROOT, OUT, HOST, NODE_EXPORTER, TARGET_DIR, EXPORTER and STATIC are set; not run on its own.
# shellcheck shell=bash

PIDS=() # servers (and samplers) started here, stopped on exit

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# prepare TOOL...: ends the run unless every TOOL and node_exporter are there, then builds the
# exporter and the static server (unless NO_BUILD is set) and makes the log directory.
prepare() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool not found"
	done
	[[ -x $NODE_EXPORTER ]] || die "$NODE_EXPORTER not found (scripts/install-deps --bench installs it)"
	if [[ -z ${NO_BUILD:-} ]]; then
		(cd "$ROOT" && cargo build --release --quiet --bin indicator_exporter --example static_server)
	fi
	[[ -x $EXPORTER && -x $STATIC ]] || die "release binaries missing in $TARGET_DIR"
	mkdir -p "$OUT/logs"
}

# serve_references N DIR EXPORTER_URL NODE_PORT STATIC_PORT: saves the dataset part of the
# exporter's text exposition (what node_exporter's textfile collector reads) as
# DIR/textfile/datasets.prom, then serves that file with node_exporter and with the static
# server (which serves it gzipped at level 9, compressed once at its start). Sets REF_PROM,
# REF_NODE_PID and REF_STATIC_PID; the caller waits for them to answer.
serve_references() {
	local n=$1 dir=$2 url=$3 p_node=$4 p_static=$5
	rm -rf "$dir/textfile" && mkdir -p "$dir/textfile"
	curl -s --max-time 300 "$url" |
		awk '!/^(# (HELP|TYPE) )?(indicator_exporter_|process_)/' >"$dir/textfile/datasets.prom.tmp"
	mv "$dir/textfile/datasets.prom.tmp" "$dir/textfile/datasets.prom"
	REF_PROM=$dir/textfile/datasets.prom
	"$NODE_EXPORTER" --collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$dir/textfile" --web.disable-exporter-metrics \
		--web.listen-address="$HOST:$p_node" >"$OUT/logs/node_exporter-$n.log" 2>&1 &
	REF_NODE_PID=$!
	PIDS+=("$REF_NODE_PID")
	"$STATIC" "$REF_PROM" "$HOST:$p_static" >"$OUT/logs/static-$n.log" 2>&1 &
	REF_STATIC_PID=$!
	PIDS+=("$REF_STATIC_PID")
}

# cpu_ticks PID...: total user+system CPU ticks used so far by the processes.
cpu_ticks() {
	local pid total=0 stat fields
	for pid in "$@"; do
		stat=$(<"/proc/$pid/stat")
		read -ra fields <<<"${stat##*) }"
		total=$((total + fields[11] + fields[12]))
	done
	echo "$total"
}

# wait_idle PID...: polls until the processes use no CPU for 0.5 s (a server may still be
# answering requests a client gave up on, the exporter compressing a body again at its final
# level), for at most IDLE_DEADLINE seconds (default 180).
wait_idle() {
	local deadline=$((SECONDS + ${IDLE_DEADLINE:-180})) before after
	while ((SECONDS < deadline)); do
		before=$(cpu_ticks "$@")
		sleep 0.5 # measuring window
		after=$(cpu_ticks "$@")
		((after - before <= 1)) && return 0
	done
	echo "$(basename "$0"): servers still busy after ${IDLE_DEADLINE:-180}s, measuring anyway" >&2
}
