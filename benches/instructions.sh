#!/usr/bin/env bash
# Instructions per request of the whole release proxy process (every thread: workers, the log
# writer, the accept loop), counted by callgrind. Unlike req/s or CPU time, this figure does not
# move with the machine's load, so two builds can be compared on a busy 2-core machine.
#
#   bash benches/instructions.sh                  # 1 KiB GETs, endpoint mode, RUST_LOG=warn
#   S3X_LOG=info bash benches/instructions.sh     # with the access line
#   S3X_BIN=/path/to/s3x-proxy bash benches/instructions.sh   # another build
#   S3X_ARGS="--workers 1" bash benches/instructions.sh        # extra proxy flags
#   S3X_CG_DIR=/tmp/cg bash benches/instructions.sh  # keep callgrind's files (cg.N1, cg.N2)
#                                                  # for callgrind_annotate
#
# The emulator (release example) is the upstream, over TLS on loopback; the client is curl,
# one keep-alive HTTP/1.1 connection, requests one after another (`perf/run`'s c=1 shape, path
# style as there). The proxy runs twice under callgrind, for N1 and N2 requests after the same
# warm-up; (I(N2) - I(N1)) / (N2 - N1) is one request's share, start-up and the first
# CreateSession cancelled out. valgrind does not emulate the SHA extensions, so SHA-256 counts
# more instructions here than it costs on the CPU (callgrind_annotate shows it apart). Only
# user-space instructions count: system calls, wake-ups and context switches are not in the
# figure. Start-up under valgrind is slow: one call takes 5-10 minutes on a busy 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-300}
N2=${N2:-1300}
LOG=${S3X_LOG:-warn}
BUCKET=demo--usw2-az1--x-s3

for tool in valgrind curl callgrind_annotate python3; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is missing" >&2; exit 1; }
done
cargo build --quiet --release --example emulator
if [ -z "${S3X_BIN:-}" ]; then
  cargo build --quiet --release --bin s3x-proxy
  S3X_BIN=target/release/s3x-proxy
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for FILE PATTERN
  for _ in $(seq 1 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "instructions.sh: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

env -u AWS_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR \
  target/release/examples/emulator --port 0 --dir "$work/emulator" --bucket "$BUCKET" \
  >"$work/emulator.log" 2>&1 &
pids+=($!)
wait_for "$work/emulator.log" "listening on"
upstream=$(grep -o 'listening on https://[0-9.:]*' "$work/emulator.log" | head -n 1 | sed 's#.*https://##')
key_id=$(grep -o 'AWS_ACCESS_KEY_ID=[^ ]*' "$work/emulator.log" | head -n 1 | cut -d= -f2)
secret=$(grep -o 'AWS_SECRET_ACCESS_KEY=[^ ]*' "$work/emulator.log" | head -n 1 | cut -d= -f2)

# One run: the proxy under callgrind, a PUT of 1 KiB, N GETs of it on one connection; sets
# `collected` to the instructions callgrind counted. Not run in a subshell, so the trap still
# knows the proxy's pid if something fails half-way.
collected=
run() {
  local n=$1 port admin out
  port=$(free_port)
  admin=$(free_port)
  out="$work/cg.$n"
  # shellcheck disable=SC2086
  env -i PATH="$PATH" HOME="$work" RUST_LOG="$LOG" \
    AWS_ACCESS_KEY_ID="$key_id" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=us-west-2 \
    AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE="$work/none" \
    AWS_SHARED_CREDENTIALS_FILE="$work/none" \
    valgrind --tool=callgrind --callgrind-out-file="$out" "$S3X_BIN" \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --ca-dir "$work/ca" \
    --resolve "*.amazonaws.com=$upstream" --upstream-ca "$work/emulator/ca.pem" \
    ${S3X_ARGS:-} >"$work/proxy.$n.log" 2>&1 &
  local proxy=$!
  pids+=("$proxy")
  local up=
  for _ in $(seq 1 600); do
    if curl -s -o /dev/null "http://127.0.0.1:$admin/healthz"; then up=1; break; fi
    sleep 0.2
  done
  if [ -z "$up" ]; then
    echo "instructions.sh: the proxy did not come up:" >&2
    cat "$work/proxy.$n.log" >&2
    exit 1
  fi
  local url="http://127.0.0.1:$port/$BUCKET/instructions-1k"
  head -c 1024 /dev/urandom >"$work/object"
  curl -sf -o /dev/null -T "$work/object" "$url"
  : >"$work/urls.$n"
  for _ in $(seq 1 "$n"); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$url" >>"$work/urls.$n"
  done
  curl -sf --config "$work/urls.$n"
  kill -TERM "$proxy"
  wait "$proxy" || true
  collected=$(grep -h "Collected" "$work/proxy.$n.log" | awk '{print $4}' | tr -d ,)
  if [ -z "$collected" ]; then
    echo "instructions.sh: callgrind counted nothing:" >&2
    cat "$work/proxy.$n.log" >&2
    exit 1
  fi
  if [ -n "${S3X_CG_DIR:-}" ]; then
    mkdir -p "$S3X_CG_DIR"
    cp "$out" "$S3X_CG_DIR/cg.$n"
  fi
}

run "$N1"
i1=$collected
run "$N2"
i2=$collected
per=$(( (i2 - i1) / (N2 - N1) ))
echo "instructions per request (RUST_LOG=$LOG${S3X_ARGS:+, $S3X_ARGS}): $per   (I($N1)=$i1, I($N2)=$i2)"
