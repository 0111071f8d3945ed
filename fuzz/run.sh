#!/usr/bin/env bash
# Runs the fuzz targets one after another (or the ones named), each for SECONDS (default 60),
# with cargo-fuzz and libFuzzer on the stable toolchain. See fuzz/README.md.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Environment: FUZZ_JOBS=N runs N targets at once (default 1); FUZZ_ARGS adds libFuzzer flags.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(route aws_chunked xml query authority copy_source sigv4 signed_chunks)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes nightly-only flags (-Cpasses=sancov-module and friends) to rustc; the
# stable compiler accepts them when told it is bootstrapping. No sanitizer: ASan needs a
# nightly standard library, and the crate forbids unsafe code anyway.
export RUSTC_BOOTSTRAP=1
echo "==> building ${targets[*]}"
for t in "${targets[@]}"; do
  cargo fuzz build --fuzz-dir . --sanitizer none "$t"
done

mkdir -p logs
status=0
run_one() {
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "==> $t for ${seconds}s (log: fuzz/logs/$t.log)"
  # corpus/$t grows (ignored by git); seeds/$t is the committed starting point.
  # The machine may be shared: CPU seconds say how much fuzzing the wall-clock time bought.
  local timer=()
  if [ -x /usr/bin/time ]; then timer=(/usr/bin/time -f 'cpu_seconds: %U' -o "logs/$t.cpu"); fi
  if "${timer[@]}" cargo fuzz run --fuzz-dir . --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
      ${FUZZ_ARGS:-} >"logs/$t.log" 2>&1; then
    summary "$t" ok
  else
    summary "$t" FAILED
    return 1
  fi
}
summary() {
  local t=$1 verdict=$2 log="logs/$1.log"
  local runs rate cov ft cpu
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  cpu=$(sed -n 's/^cpu_seconds: *//p' "logs/$t.cpu" 2>/dev/null)
  printf '%-12s %-6s runs=%s exec/s=%s cov=%s ft=%s cpu_s=%s artifacts=%s\n' "$t" "$verdict" \
    "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${cpu:-?}" "$(ls "artifacts/$t" | wc -l)" \
    | tee -a logs/summary.txt
  if [ "$verdict" != ok ]; then
    grep -m1 -A12 -E 'panicked|ERROR: libFuzzer' "$log" || tail -20 "$log"
  fi
}

jobs=${FUZZ_JOBS:-1}
pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
exit $status
