#!/usr/bin/env bash
# Soak: scrapes (plain, gzip, TLS) and reloads for several minutes on loopback, then checks
# that no request failed and that memory did not grow.
#
# Usage:
#   benches/soak.sh                        # builds the release binary, runs 3 minutes
#   DURATION=600 SERIES=100000 benches/soak.sh
#
# Environment (all optional):
#   DURATION   seconds of load after the warm-up (default 180)
#   WARMUP     seconds of load before the reference RSS is read (default 60: the allocator
#              keeps growing its per-thread arenas for the first tens of seconds)
#   SERIES     series of the generated dataset (default 10000)
#   RELOAD_EVERY  seconds between reloads (default 2)
#   PORT       first of two ports on 127.0.0.1: plain, TLS (default 18915)
#   OUT        where datasets, certificates and logs go (default benches/out/soak)
#   NO_BUILD=1 use target/release/indicator_exporter as it is
#
# Two exporters serve the same generated dataset: one plain (scraped as text, OpenMetrics and
# gzip), one with a web config that turns TLS on (scraped over HTTPS, gzip). Every
# RELOAD_EVERY seconds the dataset swaps between two versions (a symlink swap, as a ConfigMap
# update does) and both are reloaded with POST /-/reload, so every reload replaces every
# figure. Each client loop counts its failures (any status but 200, any curl error, an empty
# body). RSS (VmRSS) of each exporter is the median of SAMPLES (11) readings 1 s apart, after
# the warm-up and at the end.
# PASS when: zero failed requests and reloads, and each exporter's final RSS within 10 % of its
# RSS after warm-up. Needs bash, curl, openssl and python3. Listens on 127.0.0.1 only; every
# process started here is stopped on exit.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-180}
WARMUP=${WARMUP:-60}
SERIES=${SERIES:-10000}
RELOAD_EVERY=${RELOAD_EVERY:-2}
PORT=${PORT:-18915}
OUT=${OUT:-$ROOT/benches/out/soak}
EXPORTER=${CARGO_TARGET_DIR:-$ROOT/target}/release/indicator_exporter
HOST=127.0.0.1
PLAIN=$HOST:$PORT
TLS=$HOST:$((PORT + 1))

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "soak.sh: $*" >&2
	exit 1
}
for tool in curl openssl python3; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
if [[ -z ${NO_BUILD:-} ]]; then
	(cd "$ROOT" && cargo build --release --quiet --bin indicator_exporter)
fi
[[ -x $EXPORTER ]] || die "$EXPORTER not built"

rm -rf "$OUT"
mkdir -p "$OUT/counts"
python3 "$ROOT/benches/generate.py" "$SERIES" "$OUT/a" --seed 1 >/dev/null
python3 "$ROOT/benches/generate.py" "$SERIES" "$OUT/b" --seed 2 >/dev/null
ln -s a "$OUT/live"

# A CA and a server certificate for 127.0.0.1, made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=soak-ca -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
	-keyout "$OUT/server.key" -out "$OUT/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$OUT/san.ext"
openssl x509 -req -in "$OUT/server.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
	-CAcreateserial -days 2 -extfile "$OUT/san.ext" -out "$OUT/server.pem" 2>/dev/null
cat >"$OUT/web.yml" <<EOF
tls_server_config:
  cert_file: server.pem
  key_file: server.key
EOF

start() { # name address extra-args...; sets STARTED to the process id
	local name=$1 address=$2
	shift 2
	"$EXPORTER" --config.file "$OUT/live/config.toml" --web.listen-address "$address" \
		--web.enable-lifecycle "$@" 2>"$OUT/$name.log" &
	STARTED=$!
	PIDS+=("$STARTED")
}
declare -A PID
start plain "$PLAIN"
PID[plain]=$STARTED
start tls "$TLS" --web.config.file "$OUT/web.yml"
PID[tls]=$STARTED
CURL_TLS=(--cacert "$OUT/ca.pem")

wait_up() { # url curl-args...
	local url=$1 deadline=$((SECONDS + 120))
	shift
	until curl -sf -o /dev/null "$@" "$url"; do
		((SECONDS < deadline)) || die "$url did not answer within 120 s"
		sleep 0.2
	done
}
wait_up "http://$PLAIN/-/ready"
wait_up "https://$TLS/-/ready" "${CURL_TLS[@]}"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Median VmRSS (kB) of each exporter over SAMPLES readings 1 s apart, into the array named $1:
# one reading swings by megabytes between reloads.
SAMPLES=${SAMPLES:-11}
rss_median() {
	# shellcheck disable=SC2034 # a nameref: the caller reads what is written here
	local -n into=$1
	local p i
	declare -A seen
	for ((i = 0; i < SAMPLES; i++)); do
		for p in plain tls; do seen[$p]+="$(rss_kb "${PID[$p]}") "; done
		sleep 1
	done
	for p in plain tls; do
		# shellcheck disable=SC2034 # a nameref: the caller reads what is written here
		into[$p]=$(tr ' ' '\n' <<<"${seen[$p]}" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
	done
}

# One client loop: requests until the stop file exists, counting requests and failures.
client() { # name url curl-args...
	local name=$1 url=$2 ok=0 failed=0 code size
	shift 2
	while [[ ! -e $OUT/stop ]]; do
		if out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' --max-time 30 "$@" "$url" 2>&1); then
			read -r code size <<<"$out"
			if [[ $code == 200 && $size -gt 0 ]]; then
				ok=$((ok + 1))
			else
				failed=$((failed + 1))
				echo "$name: $out" >>"$OUT/failures.log"
			fi
		else
			failed=$((failed + 1))
			echo "$name: $out" >>"$OUT/failures.log"
		fi
	done
	echo "$ok $failed" >"$OUT/counts/$name"
}

reloader() {
	local ok=0 failed=0 next=b url
	while [[ ! -e $OUT/stop ]]; do
		ln -s "$next" "$OUT/live.new" && mv -T "$OUT/live.new" "$OUT/live"
		[[ $next == b ]] && next=a || next=b
		for url in "http://$PLAIN/-/reload" "https://$TLS/-/reload"; do
			if curl -sf -o /dev/null -X POST --max-time 60 "${CURL_TLS[@]}" "$url"; then
				ok=$((ok + 1))
			else
				failed=$((failed + 1))
				echo "reload $url failed" >>"$OUT/failures.log"
			fi
		done
		sleep "$RELOAD_EVERY"
	done
	echo "$ok $failed" >"$OUT/counts/reload"
}

client text "http://$PLAIN/metrics" &
PIDS+=($!)
client openmetrics "http://$PLAIN/metrics" -H 'Accept: application/openmetrics-text;version=1.0.0' &
PIDS+=($!)
client gzip "http://$PLAIN/metrics" --compressed &
PIDS+=($!)
client tls "https://$TLS/metrics" "${CURL_TLS[@]}" &
PIDS+=($!)
client tls_gzip "https://$TLS/metrics" "${CURL_TLS[@]}" --compressed &
PIDS+=($!)
reloader &
PIDS+=($!)

echo "soak: $SERIES series, ${WARMUP}s warm-up, ${DURATION}s measured, reload every ${RELOAD_EVERY}s"
sleep "$WARMUP"
declare -A RSS0 RSS1
rss_median RSS0
sleep "$DURATION"
rss_median RSS1
touch "$OUT/stop"
for name in text openmetrics gzip tls tls_gzip reload; do
	deadline=$((SECONDS + 90))
	until [[ -s $OUT/counts/$name ]]; do
		((SECONDS < deadline)) || die "client $name did not stop"
		sleep 0.2
	done
done

status=0
printf '\n%-12s %10s %8s\n' client requests failed
for name in text openmetrics gzip tls tls_gzip reload; do
	read -r ok failed <"$OUT/counts/$name"
	printf '%-12s %10d %8d\n' "$name" $((ok + failed)) "$failed"
	((failed == 0)) || status=1
done
printf '\n%-8s %14s %12s %8s   (medians of %d readings)\n' exporter 'RSS warm (MB)' 'RSS end (MB)' ratio "$SAMPLES"
for p in plain tls; do
	ratio=$(python3 -c "print(f'{${RSS1[$p]} / ${RSS0[$p]}:.3f}')")
	printf '%-8s %14.1f %12.1f %8s\n' "$p" "$(python3 -c "print(${RSS0[$p]}/1024)")" \
		"$(python3 -c "print(${RSS1[$p]}/1024)")" "$ratio"
	python3 -c "import sys; sys.exit(0 if ${RSS1[$p]} <= 1.10 * ${RSS0[$p]} else 1)" || status=1
done
if ((status == 0)); then
	echo "PASS: zero failed requests and reloads; RSS within 10 % of its value after warm-up"
else
	echo "FAIL: see above and $OUT/failures.log"
fi
exit $status
