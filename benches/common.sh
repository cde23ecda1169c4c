# What the serving benchmarks (benches/load.sh, benches/catalog.sh) share: the servers they
# start are stopped on exit, errors end the run, the release binaries are built once. Sourced
# after ROOT, OUT, NODE_EXPORTER, TARGET_DIR, EXPORTER and STATIC are set; not run on its own.
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
