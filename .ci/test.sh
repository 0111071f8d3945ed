#!/usr/bin/env bash
# The whole test suite, as the README says: installs what the tests need on a fresh machine
# (a Python venv with the aws CLI and boto3 under target/py, curl), then runs formatting and
# lint checks, every Rust test (unit, emulator, integration, end-to-end with real clients),
# and the offline validation of deploy/.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

step() { printf '\n==> %s\n' "$*"; }

step "installing test clients"
if ! command -v curl >/dev/null 2>&1 || ! command -v sha256sum >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq curl coreutils
fi
venv=target/py
if ! "$venv/bin/python" -c 'import boto3, awscli' >/dev/null 2>&1 \
   || ! cmp -s .ci/requirements.txt "$venv/.requirements" ; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements.txt
  cp .ci/requirements.txt "$venv/.requirements"
fi
export S3X_TEST_VENV="$PWD/$venv"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit, emulator, SigV4 vectors, integration, real clients)"
mkdir -p target
cargo test --workspace --locked 2>&1 | tee target/test-output.log
passed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^passed/) s += $i} END {print s + 0}' target/test-output.log)
failed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^failed/) s += $i} END {print s + 0}' target/test-output.log)

step "validating deploy/"
bash deploy/validate.sh

printf '\nall checks passed in %ss\n' "$(( $(date +%s) - started ))"
printf 'tests: %s passed, %s failed\n' "$passed" "$failed"
