#!/usr/bin/env bash
# Serving benchmark: indicator_exporter against node_exporter's textfile collector and a static
# in-memory server (the ceiling on this machine), on the same exposition, at 10,000, 100,000
# and 1,000,000 series.
#
# Usage:
#   benches/load.sh                       # builds the release binaries, then runs every size
#   SIZES="10000 100000" benches/load.sh  # chosen sizes only
#
# Environment (all optional):
#   SIZES           series counts to run (default "10000 100000 1000000")
#   WRK_ARGS        wrk load shape (default "-t2 -c16 -d10s --timeout 30s")
#   WRK_ARGS_SLOW   wrk load shape for node_exporter from 100,000 series on, where one scrape
#                   takes seconds and gigabytes (default "-t2 -c2 -d20s --timeout 60s")
#   ROUNDS          paired gzip rounds, exporter against static (default 21, 0 skips them)
#   WRK_ARGS_PAIRED wrk load shape of each paired run (default "-t2 -c16 -d1s --timeout 30s")
#   PORT            first of three consecutive ports on 127.0.0.1 (default 18905)
#   OUT             where datasets, exposition files and logs go (default benches/out)
#   NO_BUILD=1      use the binaries already in $CARGO_TARGET_DIR (default target/release)
#   NODE_EXPORTER   node_exporter binary (default /usr/bin/prometheus-node-exporter)
#
# Needs bash, curl, wrk, python3 and node_exporter. Everything listens on 127.0.0.1 only; every
# server started here is stopped on exit. A full run takes about five minutes on 2 cores.
#
# For each size: benches/generate.py writes the dataset; the exporter serves it; its text-format
# /metrics minus the exporter's own families (indicator_exporter_*, process_*) becomes the .prom
# file that node_exporter (--collector.textfile) and the static server
# (benches/static_server.rs, gzipped once at level 9) serve. The three run side by side and are
# measured one at a time (exporter, static, node_exporter), each once all three are idle (so
# the exporter's bodies have settled at their final level):
#   scrape   one gzip scrape with curl (median of 5), and the gzip body size (the exporter's
#            includes its own metrics, about 2 KiB)
#   wrk      requests/s and p50/p99 latency, without and with Accept-Encoding: gzip ("-" when
#            no request completed within the run), and the server's CPU time per gzip request
#   RSS      "load RSS": highest VmRSS of the server sampled every 0.1 s during both wrk runs;
#            "VmHWM": the kernel's lifetime peak RSS of the process (includes start-up)
#   paired   requests/s and CPU per request of the exporter over the static server's, plain and
#            gzip, in ROUNDS short runs taken in turn (exporter first, then static first),
#            median of the rounds' ratios: on a shared or throttled machine one 10 s run of each
#            can differ by a third from the next, while runs a few seconds apart see the same
#            machine; many short rounds spread the bursts over both. The requests/s verdicts use
#            these ratios when ROUNDS > 0.
# Targets, PASS/FAIL: exporter gzip scrape <= 1.5x static at 100,000 and 1,000,000 series;
# exporter requests/s >= 0.8x static, gzip requests/s >= 0.95x; exporter gzip bytes <= 1.05x
# static's level 9; exporter peak RSS <= 2x static + 20 MB; 1,000,000 series loaded +
# validated + rendered in < 3 s (from the exporter's "dataset loaded" log line).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=${SIZES:-"10000 100000 1000000"}
WRK_ARGS=${WRK_ARGS:-"-t2 -c16 -d10s --timeout 30s"}
WRK_ARGS_SLOW=${WRK_ARGS_SLOW:-"-t2 -c2 -d20s --timeout 60s"}
ROUNDS=${ROUNDS:-21}
WRK_ARGS_PAIRED=${WRK_ARGS_PAIRED:-"-t2 -c16 -d1s --timeout 30s"}
PORT=${PORT:-18905}
OUT=${OUT:-$ROOT/benches/out}
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
EXPORTER=$TARGET_DIR/release/indicator_exporter
STATIC=$TARGET_DIR/release/examples/static_server
HOST=127.0.0.1
SCRAPES=5
START_DEADLINE=180 # seconds a server may take to answer after start
IDLE_DEADLINE=$START_DEADLINE

SUMMARY=()  # PASS/FAIL lines, printed again at the end

# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
prepare curl wrk python3

# wait_http NAME PID URL: polls URL until it answers with any HTTP status, while PID lives.
wait_http() {
	local name=$1 pid=$2 url=$3 code
	local deadline=$((SECONDS + START_DEADLINE))
	while ((SECONDS < deadline)); do
		kill -0 "$pid" 2>/dev/null || die "$name exited during start-up (see $OUT/logs)"
		code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "$url" || true)
		[[ $code != 000 ]] && return 0
		sleep 0.05 # next poll
	done
	die "$name did not answer $url within ${START_DEADLINE}s"
}

# rss_sampler PID FILE: writes the highest VmRSS (kB) seen into FILE until killed.
rss_sampler() {
	local pid=$1 file=$2 max=0 key value unit
	while [[ -r /proc/$pid/status ]]; do
		while read -r key value unit; do
			if [[ $key == VmRSS: ]] && ((value > max)); then
				max=$value
				echo "$max" >"$file"
			fi
		done <"/proc/$pid/status" 2>/dev/null || true
		sleep 0.1
	done
}

vm_hwm_kb() {
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status"
}

# scrape_once URL: prints "seconds bytes" of one gzip scrape; fails on a non-200 answer.
scrape_once() {
	local r
	r=$(curl -s -o /dev/null --max-time 300 -H 'Accept-Encoding: gzip' \
		-w '%{http_code} %{time_total} %{size_download}' "$1") || die "scrape of $1 failed"
	[[ ${r%% *} == 200 ]] || die "scrape of $1 answered ${r%% *}"
	echo "${r#* }"
}

median() {
	sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# run_wrk URL ARGS [HEADER]: prints "rps p50_ms p99_ms requests errors".
run_wrk() {
	local url=$1 args=$2 header=${3:-} out
	# shellcheck disable=SC2086 # ARGS is a list of flags
	if [[ -n $header ]]; then
		out=$(wrk $args --latency -H "$header" "$url")
	else
		out=$(wrk $args --latency "$url")
	fi
	echo "$out" >>"$OUT/logs/wrk.log"
	echo "$out" | awk '
		function ms(s) {
			if (s ~ /us$/) return substr(s, 1, length(s) - 2) / 1000
			if (s ~ /ms$/) return substr(s, 1, length(s) - 2) + 0
			if (s ~ /m$/) return substr(s, 1, length(s) - 1) * 60000
			if (s ~ /s$/) return substr(s, 1, length(s) - 1) * 1000
			return s + 0
		}
		$1 == "50%" { p50 = ms($2) }
		$1 == "99%" { p99 = ms($2) }
		$1 == "Requests/sec:" { rps = $2 }
		$2 == "requests" && $3 == "in" { n = $1 }
		/Socket errors/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
		/Non-2xx/ { errors += $NF }
		END { printf "%.1f %.2f %.2f %d %d\n", rps, p50, p99, n, errors }'
}

# short_run URL PID [HEADER]: prints "req/s cpu_us_per_request" of one wrk run
# (WRK_ARGS_PAIRED).
short_run() {
	local url=$1 pid=$2 header=${3:-} ticks rps done
	ticks=$(cpu_ticks "$pid")
	read -r rps _ _ done _ < <(run_wrk "$url" "$WRK_ARGS_PAIRED" "$header")
	awk -v r="$rps" -v t="$(($(cpu_ticks "$pid") - ticks))" -v hz="$(getconf CLK_TCK)" -v n="$done" \
		'BEGIN { if (n > 0) printf "%s %.2f\n", r, t / hz * 1e6 / n; else print "0 0" }'
}

# paired URL_A PID_A URL_B PID_B [HEADER]: ROUNDS rounds of one run of each, A first in even
# rounds and B first in odd ones; prints "median req/s ratio, median CPU/request ratio" (A/B)
# and logs every round.
paired() {
	local ua=$1 pa=$2 ub=$3 pb=$4 header=${5:-} i a b rr=() cr=()
	for ((i = 0; i < ROUNDS; i++)); do
		if ((i % 2 == 0)); then
			a=$(short_run "$ua" "$pa" "$header")
			b=$(short_run "$ub" "$pb" "$header")
		else
			b=$(short_run "$ub" "$pb" "$header")
			a=$(short_run "$ua" "$pa" "$header")
		fi
		echo "paired round $i${header:+ ($header)}: exporter $a, static $b (req/s, CPU us/request)" >>"$OUT/logs/paired.log"
		rr+=("$(awk -v a="${a% *}" -v b="${b% *}" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
		cr+=("$(awk -v a="${a#* }" -v b="${b#* }" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')")
	done
	echo "$(printf '%s\n' "${rr[@]}" | median) $(printf '%s\n' "${cr[@]}" | median)"
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else print "n/a" }'
}

verdict() { # verdict OK_EXPRESSION(awk) TEXT
	local ok
	ok=$(awk "BEGIN { print ($1) ? \"PASS\" : \"FAIL\" }")
	SUMMARY+=("$ok: $2")
	echo "$ok: $2"
}

run_size() {
	local n=$1
	local dir=$OUT/$n
	local p_exp=$PORT p_node=$((PORT + 1)) p_static=$((PORT + 2))
	echo
	echo "=== $n series ($(date -u +%H:%M:%S)) ==="
	python3 "$ROOT/benches/generate.py" "$n" "$dir" >/dev/null

	local log=$OUT/logs/exporter-$n.log
	"$EXPORTER" --config.file "$dir/config.toml" --web.listen-address="$HOST:$p_exp" >"$log" 2>&1 &
	local pid_exp=$!
	PIDS+=("$pid_exp")
	wait_http exporter "$pid_exp" "http://$HOST:$p_exp/-/ready"
	local load_ms
	load_ms=$(sed -n 's/.*msg="dataset loaded".*duration_ms=\([0-9]*\).*/\1/p' "$log" | head -n1)
	[[ -n $load_ms ]] || load_ms=$(sed -n 's/.*"duration_ms":\([0-9]*\).*/\1/p' "$log" | head -n1)

	serve_references "$n" "$dir" "http://$HOST:$p_exp/metrics" "$p_node" "$p_static"
	local prom=$REF_PROM pid_node=$REF_NODE_PID pid_static=$REF_STATIC_PID
	wait_http node_exporter "$pid_node" "http://$HOST:$p_node/"
	wait_http static_server "$pid_static" "http://$HOST:$p_static/"

	printf 'dataset: %s; .prom: %s lines, %.1f MiB; exporter load: %s ms\n' "$dir/config.toml" \
		"$(wc -l <"$prom")" "$(awk -v b="$(stat -c %s "$prom")" 'BEGIN {print b / 1048576}')" "$load_ms"

	local -A scrape gzbytes rps p50 p99 grps gp50 gp99 gcpu errs rss hwm
	local name port pid url args i s rfile sampler done
	for name in exporter static node_exporter; do
		case $name in
		exporter) port=$p_exp pid=$pid_exp ;;
		node_exporter) port=$p_node pid=$pid_node ;;
		static) port=$p_static pid=$pid_static ;;
		esac
		url="http://$HOST:$port/metrics"
		args=$WRK_ARGS
		[[ $name == node_exporter && $n -ge 100000 ]] && args=$WRK_ARGS_SLOW
		wait_idle "$pid_exp" "$pid_node" "$pid_static"
		scrape_once "$url" >/dev/null # warm-up, not counted

		local times=() r ticks
		for ((i = 0; i < SCRAPES; i++)); do
			r=$(scrape_once "$url")
			times+=("${r% *}")
			gzbytes[$name]=${r#* }
		done
		scrape[$name]=$(printf '%s\n' "${times[@]}" | median | awk '{printf "%.1f", $1 * 1000}')

		rfile=$OUT/logs/rss-$name-$n
		echo 0 >"$rfile"
		rss_sampler "$pid" "$rfile" &
		sampler=$!
		PIDS+=("$sampler")
		read -r rps[$name] p50[$name] p99[$name] done s < <(run_wrk "$url" "$args")
		if ((done == 0)); then rps[$name]=- p50[$name]=- p99[$name]=-; fi
		wait_idle "$pid_exp" "$pid_node" "$pid_static"
		ticks=$(cpu_ticks "$pid")
		read -r grps[$name] gp50[$name] gp99[$name] done r < <(run_wrk "$url" "$args" 'Accept-Encoding: gzip')
		gcpu[$name]=$(awk -v t="$(($(cpu_ticks "$pid") - ticks))" -v hz="$(getconf CLK_TCK)" -v n="$done" \
			'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
		if ((done == 0)); then grps[$name]=- gp50[$name]=- gp99[$name]=-; fi
		errs[$name]=$((s + r))
		kill "$sampler" 2>/dev/null || true
		wait "$sampler" 2>/dev/null || true
		rss[$name]=$(awk '{printf "%.1f", $1 / 1024}' "$rfile")
		hwm[$name]=$(awk -v k="$(vm_hwm_kb "$pid")" 'BEGIN {printf "%.1f", k / 1024}')
	done

	echo
	printf '%-14s | %10s | %9s | %9s | %8s | %8s | %9s | %8s | %8s | %9s | %8s | %8s | %6s\n' \
		server "scrape ms" "gz KiB" "req/s" "p50 ms" "p99 ms" "gz req/s" "p50 ms" "p99 ms" \
		"gz CPU us" "load RSS" "VmHWM" errors
	printf '%s\n' "---------------+------------+-----------+-----------+----------+----------+-----------+----------+----------+-----------+----------+----------+-------"
	for name in exporter static node_exporter; do
		printf '%-14s | %10s | %9s | %9s | %8s | %8s | %9s | %8s | %8s | %9s | %7sM | %7sM | %6s\n' \
			"$name" "${scrape[$name]}" "$(awk -v b="${gzbytes[$name]}" 'BEGIN {printf "%.0f", b / 1024}')" \
			"${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "${grps[$name]}" "${gp50[$name]}" "${gp99[$name]}" \
			"${gcpu[$name]}" "${rss[$name]}" "${hwm[$name]}" "${errs[$name]}"
	done
	echo "scrape ms: one gzip scrape (curl, median of $SCRAPES); req/s, p50, p99: wrk without and with"
	echo "gzip (${WRK_ARGS}; node_exporter from 100,000 series: ${WRK_ARGS_SLOW}); load RSS: peak"
	echo "VmRSS sampled during both wrk runs; VmHWM: lifetime peak RSS, start-up included; errors:"
	echo "wrk socket errors, timeouts and non-2xx answers; gz CPU us: the server's CPU time per gzip"
	echo "request during the gzip wrk run (steadier than req/s when other work shares the cores);"
	echo "gz bytes: the exporter's gzip body over the other's (static: gzip level 9, node_exporter:"
	echo "Go's default level)."
	echo
	local other
	for other in static node_exporter; do
		printf 'exporter / %-13s  scrape %5s   gz bytes %5s   req/s %5s   gz req/s %5s   gz CPU/req %5s   load RSS %5s   VmHWM %5s\n' \
			"$other" "$(ratio "${scrape[exporter]}" "${scrape[$other]}")" \
			"$(ratio "${gzbytes[exporter]}" "${gzbytes[$other]}")" \
			"$(ratio "${rps[exporter]}" "${rps[$other]}")" "$(ratio "${grps[exporter]}" "${grps[$other]}")" \
			"$(ratio "${gcpu[exporter]}" "${gcpu[$other]}")" \
			"$(ratio "${rss[exporter]}" "${rss[$other]}")" "$(ratio "${hwm[exporter]}" "${hwm[$other]}")"
	done
	echo

	local pair_rps pair_cpu plain_rps plain_cpu
	if ((ROUNDS > 0)); then
		wait_idle "$pid_exp" "$pid_node" "$pid_static"
		read -r plain_rps plain_cpu < <(paired "http://$HOST:$p_exp/metrics" "$pid_exp" \
			"http://$HOST:$p_static/metrics" "$pid_static")
		read -r pair_rps pair_cpu < <(paired "http://$HOST:$p_exp/metrics" "$pid_exp" \
			"http://$HOST:$p_static/metrics" "$pid_static" 'Accept-Encoding: gzip')
		printf 'exporter / static, paired  req/s %5s   CPU/req %5s   gz req/s %5s   gz CPU/req %5s   (medians of %s rounds of %s, in turn)\n\n' \
			"$plain_rps" "$plain_cpu" "$pair_rps" "$pair_cpu" "$ROUNDS" "$WRK_ARGS_PAIRED"
	fi

	if ((n >= 100000)); then
		verdict "${scrape[exporter]} <= 1.5 * ${scrape[static]}" \
			"$n series: exporter gzip scrape ${scrape[exporter]} ms <= 1.5x static ${scrape[static]} ms"
	fi
	if ((ROUNDS > 0)); then
		verdict "$plain_rps >= 0.8" \
			"$n series: exporter req/s $plain_rps x static's >= 0.8x (plain, paired, median of $ROUNDS rounds)"
	else
		verdict "${rps[exporter]/#-/0} >= 0.8 * ${rps[static]/#-/0}" \
			"$n series: exporter ${rps[exporter]} req/s >= 0.8x static ${rps[static]} req/s (plain)"
	fi
	if ((ROUNDS > 0)); then
		verdict "$pair_rps >= 0.95" \
			"$n series: exporter gzip req/s $pair_rps x static's >= 0.95x (paired, median of $ROUNDS rounds)"
	else
		verdict "${grps[exporter]/#-/0} >= 0.95 * ${grps[static]/#-/0}" \
			"$n series: exporter ${grps[exporter]} req/s >= 0.95x static ${grps[static]} req/s (gzip)"
	fi
	verdict "${gzbytes[exporter]} <= 1.05 * ${gzbytes[static]}" \
		"$n series: exporter gzip body ${gzbytes[exporter]} bytes <= 1.05x static's level 9 ${gzbytes[static]} bytes"
	verdict "${rss[exporter]} <= 2 * ${rss[static]} + 20" \
		"$n series: exporter load RSS ${rss[exporter]} MB <= 2x static ${rss[static]} MB + 20 MB"
	verdict "${hwm[exporter]} <= 2 * ${hwm[static]} + 20" \
		"$n series: exporter VmHWM ${hwm[exporter]} MB <= 2x static ${hwm[static]} MB + 20 MB"
	if ((n == 1000000)); then
		verdict "${load_ms:-999999} < 3000" \
			"$n series: loaded + validated + rendered in ${load_ms:-?} ms < 3000 ms"
	fi

	cleanup
}

echo "load.sh: $(nproc) CPUs, $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo), $(wrk --version 2>&1 | head -n1 | cut -d' ' -f1-2), $("$NODE_EXPORTER" --version 2>&1 | head -n1)"
for n in $SIZES; do
	run_size "$n"
done
echo
echo "=== targets ==="
printf '%s\n' "${SUMMARY[@]}"
