#!/usr/bin/env bash
# Load benchmark: smtpkit (`-c sink`) against Postfix's smtp-sink, mailin-embedded
# (benches/peers/mailin-sink, a Rust crate with a thread pool) and aiosmtpd's Sink,
# each driven in turn by Postfix's smtp-source on 127.0.0.1 (workloads 1-4), by
# benches/idle_clients.py (5, 6) and by benches/pipeline_client.py (7, 8).
#
#   bash benches/load.sh              # full run: 7 interleaved repetitions, medians
#   QUICK=1 bash benches/load.sh      # check the script: 1 repetition, 10x fewer messages
#
# Environment:
#   REPS=N            repetitions (default 7; 1 with QUICK=1)
#   QUICK=1           10x fewer messages/connections, REPS=1 unless REPS is set
#   SERVERS="..."     subset/order of: smtpkit smtpkit-nopoll smtp-sink mailin aiosmtpd
#                     (default: these five; mailin is dropped with a note if mailin-sink does not build,
#                     aiosmtpd if pip cannot install it) and, on request only, epoll-floor
#                     uring-floor tokio-floor (benches/peers/floor-sinks: the floor, no SMTP server)
#                     and smtpkit-base (see SMTPKIT_BASE)
#   WORKLOADS="..."   subset of 1 2 3 4 5 6 7 8 9 (default: all)
#   PIPELINE_FORCE=1  workload 7 pipelines (and 8 sends BDAT) even to a server that does
#                     not advertise PIPELINING (CHUNKING): pipeline_client.py --force.
#                     Without it such a server's pipelined runs fail (n/a in the table)
#   SKIP_BUILD=1      don't run `cargo build --release` for smtpkit nor the peers (use
#                     the existing binaries; mailin is skipped if it has none)
#   SMTPKIT=PATH      the smtpkit binary (default: <target dir>/release/smtpkit)
#   GO_SMTP=PATH      a sink built on emersion/go-smtp (a Backend whose Session accepts
#                     and discards everything; argument: HOST:PORT), measured as the
#                     server go-smtp on request (SERVERS="smtpkit go-smtp"); it pipelines.
#                     Not built here: go-smtp's modules must come from outside this
#                     repository (see benches/README.md)
#   SMTPKIT_BASE=PATH a second smtpkit binary (an older build) measured as the server
#                     smtpkit-base, to compare a change with what it changes in one run:
#                     SERVERS="smtpkit smtpkit-base" SMTPKIT_BASE=/tmp/old/smtpkit
#   MAILIN=PATH       the mailin-sink binary (default: built from benches/peers/mailin-sink,
#                     `cargo build --release --locked`, into that project's target dir)
#   VENV=DIR          venv for aiosmtpd 1.4.6 (default /tmp/smtpkit-bench-venv)
#   PORT_BASE=N       first listening port (default 21000; one new port per run)
#   RUN_TIMEOUT=S     time limit of one smtp-source run (default 600)
#   KEEP=DIR          directory for logs and results.tsv (default: a new /tmp dir)
#
# Workloads (message counts divided by 10 with QUICK=1):
#   1  1 session, 2,000 messages of 1 KiB           smtp-source -d -s 1 -m 2000 -l 1024
#   2  a new connection per message, 2,000 x 1 KiB   smtp-source -s 1 -m 2000 -l 1024
#      (smtp-source's -d means "don't disconnect": without it every message
#      gets its own connection)
#   3  50 parallel sessions, 20,000 x 1 KiB           smtp-source -d -s 50 -m 20000 -l 1024
#   4  1 session, 20 messages of 20 MiB              smtp-source -d -s 1 -m 20 -l 20971520
#   5  2,000 idle connections (benches/idle_clients.py holds them after the greeting)
#   6  2,000 connections idle after one 64 KiB message each (sent in one write:
#      EHLO, MAIL, RCPT, DATA, the body and the dot; then held open)
#   7  1 session, 2,000 x 1 KiB by benches/pipeline_client.py, twice per server and
#      repetition (each with a fresh server; the order alternates by repetition):
#      7p pipelined (RFC 2920: MAIL, RCPT, DATA in one write; after the 354 the body,
#         the dot and the next MAIL, RCPT, DATA in one write; needs PIPELINING, which
#         smtpkit advertises with `--extensions pipelining`, passed when its --help
#         has --extensions)
#      7l lockstep (a write per command, each waiting for its reply)
#      msg/s here is the client's own time (connect .. 221), not the process's.
#   9  smtpkit only: 20 parallel sessions, one 50 MiB message each (QUICK=1: 2 x 5 MiB),
#      smtp-source -s 20 -m 20 -l 52428800, to `-c sink` (9k) and to `-c mailbox DIR`
#      (9m; DIR in the bench's temp dir, so on its disk): the Maildir must then hold
#      every message in new/ with identical bodies and nothing in tmp/
#   8  smtpkit only, with `--extensions chunking` (skipped with a note if its --help
#      lacks --extensions): 1 session, 20 x 20 MiB (QUICK=1: 2 x 2 MiB) by
#      pipeline_client.py --mode lockstep, 8b by BDAT <n> LAST (RFC 3030) and 8d by
#      DATA, the same bytes; alternating order
#
# Servers: smtpkit -c sink; smtpkit-nopoll = the same with --busy-poll 0 (no busy
# polling: what a server that sleeps in the event loop between commands does); smtp-sink; mailin = benches/peers/mailin-sink (a standalone
# cargo project: mailin-embedded's Server with a handler that accepts and drops
# everything, no TLS, no AUTH, a thread per session from a pool raised from the
# library's 4 to MAILIN_THREADS=4096); aiosmtpd's Sink.
#
# For every run a fresh server is started on a new port; recorded: wall time of
# smtp-source, the server's CPU seconds (utime+stime from /proc/PID/stat before
# and after) and its peak RSS (VmHWM). Idle connections: VmRSS before and after.
# Servers are interleaved (for each workload: for rep: for server) so that drift
# of the machine hits all of them alike; the table shows medians.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1}
    SCALE=10
else
    REPS=${REPS:-7}
    SCALE=1
fi
SERVERS=${SERVERS:-"smtpkit smtpkit-nopoll smtp-sink mailin aiosmtpd"}
WORKLOADS=${WORKLOADS:-"1 2 3 4 5 6 7 8 9"}
VENV=${VENV:-/tmp/smtpkit-bench-venv}
PORT_BASE=${PORT_BASE:-21000}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
SMTP_SOURCE=/usr/sbin/smtp-source
SMTP_SINK=/usr/sbin/smtp-sink
HZ=$(getconf CLK_TCK)

case "$REPS" in '' | *[!0-9]*) echo "REPS must be a number" >&2; exit 2 ;; esac
if [ "$REPS" -lt 1 ] || [ "$REPS" -gt 50 ]; then
    echo "REPS must be 1..50" >&2
    exit 2
fi

if [ -n "${KEEP:-}" ]; then
    WORK=$KEEP
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d /tmp/smtpkit-load.XXXXXX)
fi
RESULTS=$WORK/results.tsv
: >"$RESULTS"

SERVER_PID=
IDLE_PID=
cleanup() {
    local pid
    for pid in $IDLE_PID $SERVER_PID; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    IDLE_PID=
    SERVER_PID=
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root for: $*"
        return 1
    fi
}

# --- what the benchmark needs ------------------------------------------------

if [ ! -x "$SMTP_SOURCE" ] || [ ! -x "$SMTP_SINK" ]; then
    log "installing Debian's postfix (smtp-source, smtp-sink)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
command -v python3 >/dev/null || { log "python3 is needed (idle connections, the table)"; exit 1; }

if [[ " $SERVERS " == *" aiosmtpd "* ]]; then
    if ! "$VENV/bin/python" -c 'import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != "1.4.6")' 2>/dev/null; then
        log "installing aiosmtpd 1.4.6 into $VENV"
        if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q aiosmtpd==1.4.6; } >"$WORK/pip.log" 2>&1; then
            log "aiosmtpd unavailable (see $WORK/pip.log): skipping that peer"
            SERVERS=${SERVERS//aiosmtpd/}
        fi
    fi
fi

if [ -z "${SMTPKIT:-}" ]; then
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "building smtpkit (cargo build --release)"
        (cd "$ROOT" && cargo build --release)
    fi
    TARGET_DIR=$(cd "$ROOT" && cargo metadata --no-deps --format-version 1 |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    SMTPKIT=$TARGET_DIR/release/smtpkit
fi
[ -x "$SMTPKIT" ] || { log "no smtpkit binary at $SMTPKIT"; exit 1; }

# mailin-embedded, wrapped by benches/peers/mailin-sink (a project of its own, with
# its own Cargo.lock and [workspace]; its first build compiles aws-lc-sys, which needs
# a C compiler and takes minutes). A failed build skips the peer, like aiosmtpd.
MAILIN_DIR=$HERE/peers/mailin-sink
MAILIN_VERSION=
# drop_server NAME: removes NAME from SERVERS.
drop_server() {
    local s kept=
    for s in $SERVERS; do [ "$s" = "$1" ] || kept+="$s "; done
    SERVERS=${kept% }
}
drop_mailin() {
    log "mailin unavailable ($*): skipping that peer"
    drop_server mailin
}
if [[ " $SERVERS " == *" mailin "* ]]; then
    if [ -z "${MAILIN:-}" ]; then
        MAILIN_TARGET=$(cd "$MAILIN_DIR" && cargo metadata --no-deps --format-version 1 2>/dev/null |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') || MAILIN_TARGET=
        MAILIN=${MAILIN_TARGET:-$MAILIN_DIR/target}/release/mailin-sink
        if [ "${SKIP_BUILD:-0}" != 1 ]; then
            log "building mailin-sink (cargo build --release --locked --manifest-path benches/peers/mailin-sink/Cargo.toml)"
            if ! cargo build --release --locked --manifest-path "$MAILIN_DIR/Cargo.toml" >"$WORK/mailin-build.log" 2>&1; then
                tail -3 "$WORK/mailin-build.log" >&2 || true
                MAILIN=
                drop_mailin "build failed, see $WORK/mailin-build.log"
            fi
        fi
    fi
    if [ -n "${MAILIN:-}" ] && [ ! -x "$MAILIN" ]; then
        drop_mailin "no mailin-sink binary at $MAILIN"
    fi
    MAILIN_VERSION=$(awk '/^name = "mailin-embedded"$/ { getline; gsub(/[^0-9.]/, ""); print }' "$MAILIN_DIR/Cargo.lock" 2>/dev/null || true)
fi

# The floor of this machine (benches/peers/floor-sinks, a project of its own): a bare
# epoll loop, a bare io_uring loop and the same on tokio, that only find lines and
# answer. Not in the default list; they show how much of a server's cost is the
# kernel's and the runtime's.
FLOOR_DIR=$HERE/peers/floor-sinks
if [[ " $SERVERS " == *-floor* ]]; then
    FLOOR_TARGET=$(cd "$FLOOR_DIR" && cargo metadata --no-deps --format-version 1 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') || FLOOR_TARGET=
    FLOOR_BIN=${FLOOR_TARGET:-$FLOOR_DIR/target}/release
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "building floor-sinks (cargo build --release --locked --manifest-path benches/peers/floor-sinks/Cargo.toml)"
        cargo build --release --locked --manifest-path "$FLOOR_DIR/Cargo.toml" >"$WORK/floor-build.log" 2>&1 ||
            tail -3 "$WORK/floor-build.log" >&2 || true
    fi
    for s in epoll-floor uring-floor tokio-floor; do
        if [[ " $SERVERS " == *" $s "* ]] && [ ! -x "$FLOOR_BIN/$s" ]; then
            log "$s unavailable (no binary at $FLOOR_BIN/$s; see $WORK/floor-build.log): skipping it"
            drop_server "$s"
        fi
    done
fi

SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u nobody)

# Opt-in extensions (workloads 7 and 8): `--extensions NAME` is passed to an smtpkit
# binary only if its --help mentions --extensions (older builds have no such flag).
has_extensions() { "$1" --help 2>&1 | grep -q -e '--extensions'; }
KIT_HAS_EXT=0
has_extensions "$SMTPKIT" && KIT_HAS_EXT=1
BASE_HAS_EXT=0
if [[ " $SERVERS " == *" smtpkit-base "* ]] && [ -n "${SMTPKIT_BASE:-}" ] && has_extensions "$SMTPKIT_BASE"; then
    BASE_HAS_EXT=1
fi
KIT_EXTRA=()  # extra flags of smtpkit and smtpkit-nopoll in the current workload
BASE_EXTRA=() # the same for smtpkit-base
# kit_extensions [NAME]: sets KIT_EXTRA/BASE_EXTRA to `--extensions NAME` where the
# binary has the flag; without NAME, clears them (workloads 1-6).
kit_extensions() {
    KIT_EXTRA=()
    BASE_EXTRA=()
    [ -n "${1:-}" ] || return 0
    [ "$KIT_HAS_EXT" = 1 ] && KIT_EXTRA=(--extensions "$1")
    [ "$BASE_HAS_EXT" = 1 ] && BASE_EXTRA=(--extensions "$1")
    return 0
}
PIPELINE_FORCE=${PIPELINE_FORCE:-0}
CLIENT_FORCE=()
[ "$PIPELINE_FORCE" = 1 ] && CLIENT_FORCE=(--force)

if pgrep -f '\.ci/run' >/dev/null 2>&1; then
    log "warning: a CI run is using this machine; numbers will be noisy"
fi

# --- helpers -----------------------------------------------------------------

PORT=$PORT_BASE
next_port() { PORT=$((PORT + 1)); }

# cpu_ticks PID [user]: utime + stime of the whole process (all threads), in
# clock ticks; with "user", utime alone: the part spent in user space (the rest
# is the kernel's: system calls, and the TCP work they do for both ends of loopback).
cpu_ticks() {
    local s part=${2:-all}
    s=$(<"/proc/$1/stat")
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    if [ "$part" = user ]; then echo "${12}"; else echo $((${12} + ${13})); fi
}
# A field of /proc/PID/status in kB (VmRSS, VmHWM).
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
now() { date +%s.%N; }

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# start_server NAME PORT LOG: sets SERVER_PID once the port listens.
start_server() {
    local name=$1 port=$2 out=$3
    case "$name" in
    smtpkit) "$SMTPKIT" -n -l "127.0.0.1:$port" -c sink "${KIT_EXTRA[@]}" >"$out" 2>&1 & ;;
    smtpkit-nopoll) "$SMTPKIT" -n -l "127.0.0.1:$port" -c sink --busy-poll 0 "${KIT_EXTRA[@]}" >"$out" 2>&1 & ;;
    smtpkit-mailbox) "$SMTPKIT" -n -l "127.0.0.1:$port" -c mailbox "${MAILDIR:?}" "${KIT_EXTRA[@]}" >"$out" 2>&1 & ;;
    smtpkit-base) "${SMTPKIT_BASE:?SMTPKIT_BASE=PATH names the binary of smtpkit-base}" -n -l "127.0.0.1:$port" -c sink "${BASE_EXTRA[@]}" >"$out" 2>&1 & ;;
    smtp-sink) "$SMTP_SINK" "${SINK_USER[@]}" -m 4096 "127.0.0.1:$port" 4096 >"$out" 2>&1 & ;;
    mailin) "$MAILIN" "127.0.0.1:$port" >"$out" 2>&1 & ;;
    go-smtp) "${GO_SMTP:?GO_SMTP=PATH names a go-smtp sink binary}" "127.0.0.1:$port" >"$out" 2>&1 & ;;
    epoll-floor | uring-floor | tokio-floor) "$FLOOR_BIN/$name" "127.0.0.1:$port" >"$out" 2>&1 & ;;
    aiosmtpd) "$VENV/bin/python" -m aiosmtpd -n -c aiosmtpd.handlers.Sink -l "127.0.0.1:$port" >"$out" 2>&1 & ;;
    *) log "unknown server $name"; return 1 ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 1 200); do
        listening "$port" && { sleep 0.2; return 0; }
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    log "$name did not start on port $port (log: $out)"
    tail -5 "$out" >&2 || true
    stop_server
    return 1
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

# result WORKLOAD SERVER REP OK COUNT UNIT_BYTES WALL CPU_S HWM_KIB BASE_KIB RSS_KIB [USER_CPU_S]
result() {
    local IFS=$'\t'
    echo "$*" >>"$RESULTS"
}

# run_source WORKLOAD SERVER REP COUNT SIZE SMTP-SOURCE-FLAGS...
run_source() {
    local w=$1 server=$2 rep=$3 count=$4 size=$5
    shift 5
    next_port
    local tag="w$w-$server-r$rep"
    start_server "${START_AS:-$server}" "$PORT" "$WORK/$tag.server.log" || {
        result "$w" "$server" "$rep" 0 "$count" "$size" 0 0 0 0 0
        return 0
    }
    local c0 c1 u0 u1 t0 t1 rc=0 hwm
    c0=$(cpu_ticks "$SERVER_PID")
    u0=$(cpu_ticks "$SERVER_PID" user)
    t0=$(now)
    timeout "$RUN_TIMEOUT" "$SMTP_SOURCE" "$@" -m "$count" -l "$size" -M bench.example \
        "127.0.0.1:$PORT" >"$WORK/$tag.source.log" 2>&1 || rc=$?
    t1=$(now)
    sleep 0.2 # let the server finish closing what smtp-source left
    c1=$(cpu_ticks "$SERVER_PID")
    u1=$(cpu_ticks "$SERVER_PID" user)
    hwm=$(status_kib "$SERVER_PID" VmHWM)
    stop_server
    local ok=1
    if [ "$rc" != 0 ]; then
        ok=0
        log "  smtp-source failed (exit $rc) against $server: $(tail -2 "$WORK/$tag.source.log" | tr '\n' ' ')"
    fi
    if [ "${START_AS:-}" = smtpkit-mailbox ] && ! check_maildir "$MAILDIR" "$count"; then
        ok=0
    fi
    local wall cpu user
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    user=$(awk -v a="$u0" -v b="$u1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    result "$w" "$server" "$rep" "$ok" "$count" "$size" "$wall" "$cpu" "$hwm" 0 0 "$user"
    awk -v s="$server" -v n="$count" -v sz="$size" -v wall="$wall" -v cpu="$cpu" -v hwm="$hwm" 'BEGIN {
        if (sz >= 1048576) rate = sprintf("%.1f MiB/s", n * sz / 1048576 / wall)
        else rate = sprintf("%.0f msg/s", n / wall)
        printf "  %-9s %s  wall %.2fs  server CPU %.2fs  peak RSS %.1f MiB\n", s, rate, wall, cpu, hwm / 1024 }' >&2
}

# check_maildir DIR COUNT: COUNT messages in new/, nothing in tmp/, and every
# message's body (after its header block) the same bytes (smtp-source sends the
# same body each time); then the Maildir is removed (it holds GiBs).
check_maildir() {
    local dir=$1 count=$2 n t bodies
    n=$(find "$dir/new" -type f | wc -l)
    t=$(find "$dir/tmp" -type f | wc -l)
    bodies=$(for f in "$dir"/new/*; do sed '1,/^$/d' "$f" | md5sum; done | sort -u | wc -l)
    rm -rf "$dir"
    if [ "$n" != "$count" ] || [ "$t" != 0 ] || [ "$bodies" != 1 ]; then
        log "  maildir check failed: $n of $count messages in new/, $t files left in tmp/, $bodies different bodies"
        return 1
    fi
    log "  maildir: $n messages in new/, all bodies identical, tmp/ empty"
}

# run_client WORKLOAD SERVER REP COUNT SIZE PIPELINE_CLIENT-FLAGS...: one session of
# benches/pipeline_client.py; the wall time is the client's own (connect .. 221 of
# QUIT), without the start of the Python interpreter.
run_client() {
    local w=$1 server=$2 rep=$3 count=$4 size=$5
    shift 5
    next_port
    local tag="w$w-$server-r$rep"
    start_server "$server" "$PORT" "$WORK/$tag.server.log" || {
        result "$w" "$server" "$rep" 0 "$count" "$size" 0 0 0 0 0
        return 0
    }
    local c0 c1 u0 u1 rc=0 hwm out=$WORK/$tag.client.log
    c0=$(cpu_ticks "$SERVER_PID")
    u0=$(cpu_ticks "$SERVER_PID" user)
    timeout "$RUN_TIMEOUT" python3 "$HERE/pipeline_client.py" 127.0.0.1 "$PORT" \
        --messages "$count" --size "$size" "$@" >"$out" 2>&1 || rc=$?
    sleep 0.2
    c1=$(cpu_ticks "$SERVER_PID")
    u1=$(cpu_ticks "$SERVER_PID" user)
    hwm=$(status_kib "$SERVER_PID" VmHWM)
    stop_server
    local wall ok=1
    wall=$(sed -n 's/^messages=[0-9]* seconds=\([0-9.]*\) .*/\1/p' "$out" | tail -1)
    if [ "$rc" != 0 ] || [ -z "$wall" ]; then
        ok=0
        wall=0
        if [ "$rc" = 3 ]; then
            log "  $server: $(grep -m1 'does not advertise' "$out" | sed 's/^pipeline_client: //; s/; --force.*//') (n/a; PIPELINE_FORCE=1 to force)"
        else
            log "  pipeline_client.py failed (exit $rc) against $server: $(tail -2 "$out" | tr '\n' ' ')"
        fi
    fi
    local cpu user
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    user=$(awk -v a="$u0" -v b="$u1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    result "$w" "$server" "$rep" "$ok" "$count" "$size" "$wall" "$cpu" "$hwm" 0 0 "$user"
    [ "$ok" = 1 ] || return 0
    awk -v s="$server" -v w="$w" -v n="$count" -v sz="$size" -v wall="$wall" -v cpu="$cpu" -v hwm="$hwm" 'BEGIN {
        if (sz >= 1048576) rate = sprintf("%.1f MiB/s", n * sz / 1048576 / wall)
        else rate = sprintf("%.0f msg/s", n / wall)
        printf "  %-9s %-3s %s  wall %.3fs  server CPU %.2fs  peak RSS %.1f MiB\n", s, w, rate, wall, cpu, hwm / 1024 }' >&2
}

# run_idle WORKLOAD SERVER REP COUNT [MESSAGE_BYTES]
run_idle() {
    local w=$1 server=$2 rep=$3 count=$4 size=${5:-0}
    next_port
    local tag="w$w-$server-r$rep"
    start_server "$server" "$PORT" "$WORK/$tag.server.log" || {
        result "$w" "$server" "$rep" 0 "$count" "$size" 0 0 0 0 0
        return 0
    }
    sleep 0.3
    local base c0 c1 t0 t1 rss hwm stop=$WORK/$tag.stop out=$WORK/$tag.clients.log ready=
    base=$(status_kib "$SERVER_PID" VmRSS)
    c0=$(cpu_ticks "$SERVER_PID")
    t0=$(now)
    python3 "$HERE/idle_clients.py" 127.0.0.1 "$PORT" "$count" "$stop" 180 50 "$size" >"$out" 2>&1 &
    IDLE_PID=$!
    for _ in $(seq 1 1500); do # at most 150 s
        ready=$(grep -m1 '^ready' "$out" 2>/dev/null || true)
        [ -n "$ready" ] && break
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.1
    done
    t1=$(now)
    sleep 1 # let the server settle
    rss=$(status_kib "$SERVER_PID" VmRSS)
    hwm=$(status_kib "$SERVER_PID" VmHWM)
    c1=$(cpu_ticks "$SERVER_PID")
    touch "$stop"
    wait "$IDLE_PID" 2>/dev/null || true
    IDLE_PID=
    stop_server
    local greeted ok=1
    greeted=$(awk '{ print $2 }' <<<"${ready:-ready 0}")
    if [ "$greeted" != "$count" ]; then
        ok=0
        log "  only $greeted of $count idle connections were greeted by $server"
    fi
    local wall cpu
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) / hz }')
    result "$w" "$server" "$rep" "$ok" "$greeted" "$size" "$wall" "$cpu" "$hwm" "$base" "$rss"
    awk -v s="$server" -v n="$greeted" -v base="$base" -v rss="$rss" 'BEGIN {
        printf "  %-9s %d idle connections: RSS %.1f -> %.1f MiB, %.1f KiB each\n", s, n, base / 1024, rss / 1024, (n ? (rss - base) / n : 0) }' >&2
}

# --- the runs ----------------------------------------------------------------

KIB=1024
MIB20=$((20 * 1024 * 1024))
if [ "$QUICK" = 1 ]; then W8_COUNT=2 W8_SIZE=$((2 * 1024 * 1024)); else W8_COUNT=20 W8_SIZE=$MIB20; fi
if [ "$QUICK" = 1 ]; then W9_SESSIONS=2 W9_SIZE=$((5 * 1024 * 1024)); else W9_SESSIONS=20 W9_SIZE=52428800; fi
{
    echo "# smtpkit load benchmark"
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(uname -srm)  $(nproc) cores  REPS=$REPS QUICK=$QUICK"
    echo "# smtpkit: $("$SMTPKIT" --version 2>/dev/null | head -1)  ($SMTPKIT)"
    echo "# postfix: $(postconf -d mail_version 2>/dev/null | sed 's/.*= //' || echo '?')"
    if [[ " $SERVERS " == *" mailin "* ]]; then
        echo "# mailin-embedded: ${MAILIN_VERSION:-?} (benches/peers/mailin-sink: a thread per session, pool of ${MAILIN_THREADS:-4096})  ($MAILIN)"
    fi
    if [[ " $SERVERS " == *" aiosmtpd "* ]]; then
        echo "# aiosmtpd: $("$VENV/bin/python" -c 'import aiosmtpd; print(aiosmtpd.__version__)') on $("$VENV/bin/python" --version 2>&1)"
    fi
    if [[ " $WORKLOADS " == *" 7 "* ]] || [[ " $WORKLOADS " == *" 8 "* ]]; then
        echo "# workloads 7/8: benches/pipeline_client.py on $(python3 --version 2>&1)$([ "$PIPELINE_FORCE" = 1 ] && echo ', PIPELINE_FORCE=1 (--force)')"
        if [ "$KIT_HAS_EXT" = 1 ]; then
            echo "# smtpkit: --extensions pipelining in workload 7, --extensions chunking in workload 8"
        else
            echo "# smtpkit: no --extensions in this binary: PIPELINING not advertised (workload 7), workload 8 skipped"
        fi
    fi
    echo "# servers: $SERVERS"
} | tee "$WORK/header.txt" >&2

for w in $WORKLOADS; do
    case "$w" in
    7) kit_extensions pipelining ;;
    8)
        kit_extensions chunking
        if [ "$KIT_HAS_EXT" != 1 ]; then
            log "[workload 8 skipped: $SMTPKIT --help has no --extensions (no CHUNKING to measure)]"
            continue
        fi
        if [[ " $SERVERS " != *" smtpkit "* ]]; then
            log "[workload 8 skipped: it runs against smtpkit only, which is not in SERVERS]"
            continue
        fi
        ;;
    *) kit_extensions ;;
    esac
    for rep in $(seq 1 "$REPS"); do
        for server in $SERVERS; do
            case "$w" in
            1)
                log "[workload 1: 1 session, $((2000 / SCALE)) x 1 KiB; rep $rep/$REPS]"
                run_source 1 "$server" "$rep" $((2000 / SCALE)) $KIB -d -s 1
                ;;
            2)
                log "[workload 2: a connection per message, $((2000 / SCALE)) x 1 KiB; rep $rep/$REPS]"
                run_source 2 "$server" "$rep" $((2000 / SCALE)) $KIB -s 1
                ;;
            3)
                log "[workload 3: 50 sessions, $((20000 / SCALE)) x 1 KiB; rep $rep/$REPS]"
                run_source 3 "$server" "$rep" $((20000 / SCALE)) $KIB -d -s 50
                ;;
            4)
                log "[workload 4: 1 session, $(((20 + SCALE - 1) / SCALE)) x 20 MiB; rep $rep/$REPS]"
                run_source 4 "$server" "$rep" $(((20 + SCALE - 1) / SCALE)) $MIB20 -d -s 1
                ;;
            5)
                log "[workload 5: $((2000 / SCALE)) idle connections; rep $rep/$REPS]"
                run_idle 5 "$server" "$rep" $((2000 / SCALE))
                ;;
            6)
                log "[workload 6: $((2000 / SCALE)) connections idle after a 64 KiB message; rep $rep/$REPS]"
                run_idle 6 "$server" "$rep" $((2000 / SCALE)) $((64 * KIB))
                ;;
            7)
                log "[workload 7: 1 session, $((2000 / SCALE)) x 1 KiB, pipelined (7p) and lockstep (7l); rep $rep/$REPS]"
                if [ $((rep % 2)) = 1 ]; then modes="pipelined lockstep"; else modes="lockstep pipelined"; fi
                for mode in $modes; do
                    run_client "7${mode:0:1}" "$server" "$rep" $((2000 / SCALE)) $KIB --mode "$mode" "${CLIENT_FORCE[@]}"
                done
                ;;
            8)
                [ "$server" = smtpkit ] || continue
                log "[workload 8: 1 session, $W8_COUNT x $((W8_SIZE / 1048576)) MiB, BDAT (8b) and DATA (8d); rep $rep/$REPS]"
                if [ $((rep % 2)) = 1 ]; then bodies="--bdat data"; else bodies="data --bdat"; fi
                for body in $bodies; do
                    if [ "$body" = --bdat ]; then
                        run_client 8b "$server" "$rep" "$W8_COUNT" "$W8_SIZE" --mode lockstep --bdat "${CLIENT_FORCE[@]}"
                    else
                        run_client 8d "$server" "$rep" "$W8_COUNT" "$W8_SIZE" --mode lockstep
                    fi
                done
                ;;
            9)
                [ "$server" = smtpkit ] || continue
                log "[workload 9: $W9_SESSIONS sessions, one $((W9_SIZE / 1048576)) MiB message each, -c sink (9k) and -c mailbox (9m); rep $rep/$REPS]"
                if [ $((rep % 2)) = 1 ]; then handlers="sink mailbox"; else handlers="mailbox sink"; fi
                for handler in $handlers; do
                    if [ "$handler" = mailbox ]; then
                        MAILDIR="$WORK/maildir-r$rep"
                        START_AS=smtpkit-mailbox run_source 9m smtpkit "$rep" "$W9_SESSIONS" "$W9_SIZE" -s "$W9_SESSIONS"
                    else
                        run_source 9k smtpkit "$rep" "$W9_SESSIONS" "$W9_SIZE" -s "$W9_SESSIONS"
                    fi
                done
                ;;
            *) log "unknown workload $w" ;;
            esac
        done
    done
done

# --- the table ---------------------------------------------------------------

python3 - "$RESULTS" "$SERVERS" "$WORK/header.txt" <<'PY'
import statistics
import sys

path, servers, header = sys.argv[1], sys.argv[2].split(), sys.argv[3]
runs = {}
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 11:
        continue
    w, server, rep, ok, count, size, wall, cpu, hwm, base, rss = f[:11]
    if ok != "1":
        runs.setdefault((w, server), [])
        continue
    # The user-space part of the CPU (a 12th column; absent in older results).
    user = float(f[11]) if len(f) > 11 and f[11] else None
    runs.setdefault((w, server), []).append(
        dict(rep=rep, count=int(count), size=int(size), wall=float(wall), cpu=float(cpu),
             hwm=int(hwm), base=int(base), rss=int(rss), user=user))

def med(w, server, fn):
    vals = [v for v in (fn(r) for r in runs.get((w, server), [])) if v is not None]
    return statistics.median(vals) if vals else None

def reps(w, server):
    return len(runs.get((w, server), []))

MIB = 1048576.0
# CPU per message split by /proc/PID/stat (None for results without the split).
def kernel_ms(r):
    return None if r["user"] is None else 1000 * (r["cpu"] - r["user"]) / r["count"]
def user_ms(r):
    return None if r["user"] is None else 1000 * r["user"] / r["count"]
metrics = []  # (workload, label, fn, fmt, better)
def add(w, label, fn, fmt, better):
    metrics.append((w, label, fn, fmt, better))

def count_of(w):
    for s in servers:
        for r in runs.get((w, s), []):
            return r["count"]
    return 0

for w, name in (("1", "1 session, {n:,} x 1 KiB"),
                ("2", "new connection per message, {n:,} x 1 KiB"),
                ("3", "50 sessions, {n:,} x 1 KiB")):
    title = name.format(n=count_of(w))
    add(w, f"{title}: msg/s", lambda r: r["count"] / r["wall"], "{:,.0f}", "higher")
    add(w, f"{title}: server CPU per msg (ms)", lambda r: 1000 * r["cpu"] / r["count"], "{:.3f}", "lower")
    if w == "3":
        # Where the CPU goes: every server pays the same kernel TCP work per
        # message, so what separates them is mostly their user space.
        add(w, f"{title}: of which in the kernel (ms)", kernel_ms, "{:.3f}", "lower")
        add(w, f"{title}: of which in user space (ms)", user_ms, "{:.3f}", "lower")
    add(w, f"{title}: peak RSS (MiB)", lambda r: r["hwm"] / 1024, "{:.1f}", "lower")
title = f"1 session, {count_of('4')} x 20 MiB"
add("4", f"{title}: MiB/s", lambda r: r["count"] * r["size"] / MIB / r["wall"], "{:,.0f}", "higher")
add("4", f"{title}: server CPU per MiB (ms)", lambda r: 1000 * r["cpu"] / (r["count"] * r["size"] / MIB), "{:.2f}", "lower")
add("4", f"{title}: peak RSS (MiB)", lambda r: r["hwm"] / 1024, "{:.1f}", "lower")
title = f"{count_of('5'):,} idle connections"
add("5", f"{title}: RSS per connection (KiB)", lambda r: (r["rss"] - r["base"]) / max(r["count"], 1), "{:.1f}", "lower")
add("5", f"{title}: baseline RSS (MiB)", lambda r: r["base"] / 1024, "{:.1f}", "lower")
title = f"{count_of('6'):,} connections idle after a 64 KiB message"
add("6", f"{title}: RSS per connection (KiB)", lambda r: (r["rss"] - r["base"]) / max(r["count"], 1), "{:.1f}", "lower")
# Workload 7: the same session pipelined (7p) and in lockstep (7l); the row
# "pipelined / lockstep" divides the two medians of each server.
for w, how in (("7p", "pipelined"), ("7l", "lockstep")):
    title = f"7{how[0]} 1 session {how}, {count_of(w):,} x 1 KiB"
    add(w, f"{title}: msg/s", lambda r: r["count"] / r["wall"], "{:,.0f}", "higher")
    add(w, f"{title}: server CPU per msg (ms)", lambda r: 1000 * r["cpu"] / r["count"], "{:.3f}", "lower")
add(("7p", "7l"), "7 pipelined / lockstep: msg/s", lambda r: r["count"] / r["wall"], "{:.2f}x", "higher")
add(("7p", "7l"), "7 pipelined / lockstep: server CPU per msg", lambda r: r["cpu"] / r["count"], "{:.2f}x", "lower")
# Workload 8 (smtpkit only): the same bodies by BDAT (8b) and by DATA (8d).
def size_of(w):
    for s in servers:
        for r in runs.get((w, s), []):
            return r["size"]
    return 0
for w, how in (("8b", "BDAT"), ("8d", "DATA")):
    title = f"{w} 1 session, {count_of(w)} x {size_of(w) / MIB:.0f} MiB by {how}"
    add(w, f"{title}: MiB/s", lambda r: r["count"] * r["size"] / MIB / r["wall"], "{:,.0f}", "higher")
    add(w, f"{title}: server CPU per MiB (ms)", lambda r: 1000 * r["cpu"] / (r["count"] * r["size"] / MIB), "{:.2f}", "lower")
    add(w, f"{title}: peak RSS (MiB)", lambda r: r["hwm"] / 1024, "{:.1f}", "lower")
add(("8b", "8d"), "8 BDAT / DATA: MiB/s", lambda r: r["count"] * r["size"] / MIB / r["wall"], "{:.2f}x", "higher")
add(("8b", "8d"), "8 BDAT / DATA: server CPU per MiB", lambda r: r["cpu"] / (r["count"] * r["size"]), "{:.2f}x", "lower")
# Workload 9 (smtpkit only): parallel large messages, to -c sink (9k) and
# streamed into a Maildir (9m, fsync and rename per message).
for w, how in (("9k", "-c sink"), ("9m", "-c mailbox")):
    title = f"{w} {count_of(w)} sessions x one {size_of(w) / MIB:.0f} MiB message, {how}"
    add(w, f"{title}: msg/s", lambda r: r["count"] / r["wall"], "{:,.2f}", "higher")
    add(w, f"{title}: MiB/s", lambda r: r["count"] * r["size"] / MIB / r["wall"], "{:,.0f}", "higher")
    add(w, f"{title}: peak RSS (MiB)", lambda r: r["hwm"] / 1024, "{:.1f}", "lower")
add(("9m", "9k"), "9 mailbox / sink: msg/s", lambda r: r["count"] / r["wall"], "{:.2f}x", "higher")

peers = [s for s in servers if s != "smtpkit"]
has_kit = "smtpkit" in servers
cols = ["workload: metric (median)"] + servers
if has_kit:
    cols += [f"smtpkit / {p}" for p in peers]
rows = []
def median_ratio(pair, s, fn):
    a, b = med(pair[0], s, fn), med(pair[1], s, fn)
    return a / b if a and b else None
for w, label, fn, fmt, better in metrics:
    if isinstance(w, tuple):  # a ratio of two workloads' medians, per server
        if not any((x, s) in runs for x in w for s in servers):
            continue
        vals = {s: median_ratio(w, s, fn) for s in servers}
    elif not any((w, s) in runs for s in servers):
        continue
    else:
        vals = {s: med(w, s, fn) for s in servers}
    if all(v is None for v in vals.values()):
        continue
    row = [label] + [fmt.format(vals[s]) if vals[s] is not None else "n/a" for s in servers]
    if has_kit:
        for p in peers:
            k, v = vals["smtpkit"], vals[p]
            # n/a also when a figure is 0 (CPU below one clock tick in short runs).
            row.append(f"{k / v:.2f}x" if k and v else "n/a")
    rows.append(row)

print()
print(open(header).read().rstrip())
done = [w for w in ("1", "2", "3", "4", "5", "6", "7p", "7l", "8b", "8d", "9k", "9m") if any((w, s) in runs for s in servers)]
print(f"# successful runs (workloads {'/'.join(done)}): "
      + ", ".join(s + " " + "/".join(str(reps(w, s)) for w in done) for s in servers))
print()
widths = [max(len(r[i]) for r in rows + [cols]) for i in range(len(cols))]
def line(r):
    return "| " + " | ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) + " |"
print(line(cols))
print("|" + "|".join("-" * (wd + 2) if i == 0 else "-" * (wd + 1) + ":" for i, wd in enumerate(widths)) + "|")
for r in rows:
    print(line(r))
print()
print("Ratios are smtpkit's figure divided by the peer's: above 1 is better for msg/s and MiB/s,")
print("below 1 is better for CPU per message/MiB, RSS and RSS per connection.")
if any(isinstance(m[0], tuple) and any((x, s) in runs for x in m[0] for s in servers) for m in metrics):
    print("Rows \"A / B\" divide a server's median in workload A by its median in B (7: pipelined /")
    print("lockstep; 8: BDAT / DATA); their smtpkit / peer columns compare those gains.")

if not has_kit:
    sys.exit(0)

# Paired ratios: repetition i of smtpkit divided by repetition i of the peer.
# The two ran one after the other, so slow drift of the machine cancels out
# in each pair; the spread shows how far one run can be trusted.
def paired(w, peer, fn):
    kit = {r["rep"]: fn(r) for r in runs.get((w, "smtpkit"), [])}
    other = {r["rep"]: fn(r) for r in runs.get((w, peer), [])}
    # (A figure older results lack is None, and left out below.)
    return [kit[k] / other[k] for k in sorted(kit, key=int) if k in other and kit[k] and other[k]]

def spread(ratios):
    if not ratios:
        return "n/a"
    return (f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}, "
            f"n={len(ratios)})")

print()
print("Paired ratios (each repetition of smtpkit / the peer's run next to it): median (min-max, n)")
for w, label, fn, fmt, better in metrics:
    if w not in ("1", "2", "3", "4", "7p", "7l") or "RSS" in label or "per MiB" in label or "of which" in label:
        continue
    if (w, "smtpkit") not in runs:
        continue
    cells = [f"{p} {spread(paired(w, p, fn))}" for p in peers if (w, p) in runs]
    print(f"  {label}: " + "; ".join(cells))

# The targets of the performance issue, checked against this run.
# smtpkit-nopoll and smtpkit-base are smtpkit itself, and the floor sinks are no SMTP
# servers: not peers.
others = [p for p in peers if p not in ("smtpkit-nopoll", "smtpkit-base") and not p.endswith("-floor")]
def kit(w, fn):
    return med(w, "smtpkit", fn)
def best_peer(w, fn):
    vals = [(med(w, p, fn), p) for p in others if med(w, p, fn)]
    return max(vals) if vals else (None, None)
msgs = lambda r: r["count"] / r["wall"]
cpu = lambda r: 1000 * r["cpu"] / r["count"]
mibs = lambda r: r["count"] * r["size"] / MIB / r["wall"]
checks = []
def check(name, ok, detail):
    checks.append((name, ok, detail))
for w, what in (("1", "1 session"), ("2", "new connection per message")):
    k = kit(w, msgs)
    v, p = best_peer(w, msgs)
    if k and v:
        pr = paired(w, p, msgs)
        check(f"{what}: msg/s >= 1.2x the best peer", k / v >= 1.2,
              f"{k / v:.2f}x {p}; paired median {spread(pr)}")
if kit("3", cpu) and med("3", "smtp-sink", cpu):
    r = kit("3", cpu) / med("3", "smtp-sink", cpu)
    detail = f"{r:.2f}x; paired median {spread(paired('3', 'smtp-sink', cpu))}"
    k_kern, s_kern = kit("3", kernel_ms), med("3", "smtp-sink", kernel_ms)
    k_user, s_user = kit("3", user_ms), med("3", "smtp-sink", user_ms)
    if k_kern and s_kern and k_user is not None and s_user:
        detail += (f"\n        of which kernel {k_kern:.3f} vs {s_kern:.3f} ms ({k_kern / s_kern:.2f}x),"
                   f" user space {k_user:.3f} vs {s_user:.3f} ms")
    for p in (p for p in peers if p.endswith("-floor") and med("3", p, cpu)):
        detail += (f"\n        {p} (no SMTP, the floor): {med('3', p, cpu):.3f} ms,"
                   f" {med('3', p, cpu) / med('3', 'smtp-sink', cpu):.2f}x smtp-sink")
    check("50 sessions: CPU/msg <= 0.75x smtp-sink", r <= 0.75, detail)
    r = kit("3", msgs) / med("3", "smtp-sink", msgs)
    check("50 sessions: msg/s >= smtp-sink", r >= 1.0,
          f"{r:.2f}x; paired median {spread(paired('3', 'smtp-sink', msgs))}")
if kit("4", mibs) and med("4", "mailin", mibs):
    r = kit("4", mibs) / med("4", "mailin", mibs)
    check("20 MiB: MiB/s >= 1.05x mailin", r >= 1.05,
          f"{r:.2f}x; paired median {spread(paired('4', 'mailin', mibs))}")
if kit("4", lambda r: r["hwm"]):
    size = runs[("4", "smtpkit")][0]["size"] / MIB
    hwm = kit("4", lambda r: r["hwm"] / 1024)
    check("20 MiB: peak RSS <= 2x the message size", hwm <= 2 * size,
          f"{hwm:.1f} MiB for {size:.0f} MiB messages")
if kit("5", lambda r: r["rss"]) is not None:
    each = kit("5", lambda r: (r["rss"] - r["base"]) / max(r["count"], 1))
    base = kit("5", lambda r: r["base"] / 1024)
    check("idle: <= 8 KiB RSS per connection", each <= 8, f"{each:.1f} KiB")
    check("idle: baseline RSS in single-digit MiB", base < 10, f"{base:.1f} MiB")
if checks:
    print()
    quick = "QUICK=1" in open(header).read()
    print("Targets of the performance issue (medians of this run"
          + ("; QUICK=1 is a check of the script, not a measurement" if quick else "") + "):")
    for name, ok, detail in checks:
        print(f"  [{'met' if ok else 'NOT met'}] {name}: {detail}")
PY
log "logs and raw results: $WORK (results.tsv)"
