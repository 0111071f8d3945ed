#!/usr/bin/env bash
# The whole test suite, as the README says: installs what the tests need on a fresh machine
# (a Python venv with the aws CLI and boto3 under target/py, curl, the clients of
# tests/integration/clients_more.rs: rclone, s3cmd, s3fs, pandas, pyarrow, the JS SDK; the legacy
# tools of tests/integration/legacy from Debian: awscli 2.9, restic, s4cmd, duplicity, libs3-2;
# cargo-deny under target/tools, buildah), then runs formatting and lint checks, the
# supply-chain check (cargo deny), every Rust test (unit, emulator, integration, end-to-end
# with real clients), the container image build and its smoke test (deploy/image.sh), and the
# offline validation of deploy/ (which then also checks the manifests against the built image).
#
# S3X_TEST_IMAGE=0 skips the image step (it costs a release build). S3X_TOOLS_DIR (default
# target/tools) is where cargo-deny and cargo-cyclonedx are installed: point it outside the clone
# to keep them across fresh clones.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

# Each step's wall time, printed at the end.
timings=()
step_name=""
step_start=0
step_done() {
  if [ -n "$step_name" ]; then
    timings+=("$(printf '%5ss  %s' "$(( $(date +%s) - step_start ))" "$step_name")")
  fi
}
step() {
  step_done
  step_name="$*"
  step_start=$(date +%s)
  printf '\n==> %s\n' "$*"
}

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

# More real clients (tests/integration/clients_more.rs): rclone from Debian; s3cmd, s3fs, pandas
# and pyarrow in a venv of their own (aiobotocore pins its own botocore); the AWS SDK for
# JavaScript v3 under target/js, from tests/clients/js/package-lock.json.
timed() { local t0; t0=$(date +%s); "$@"; printf '    %s: %ss\n' "$1" "$(( $(date +%s) - t0 ))"; }
if ! command -v rclone >/dev/null 2>&1; then
  timed apt-get update -qq
  timed apt-get install -y -qq -o DPkg::Lock::Timeout=300 rclone
fi
# Legacy tools (tests/integration/legacy), Debian's own builds: the aws CLI 2.9 (/usr/bin/aws, not
# the venv's), restic, s4cmd, duplicity (whose boto3+s3:// backend needs python3-boto3) and
# libs3's `s3` (package libs3-2).
legacy=()
for package in awscli restic s4cmd duplicity python3-boto3 libs3-2; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || legacy+=("$package")
done
if [ ${#legacy[@]} -gt 0 ]; then
  timed apt-get update -qq
  timed apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${legacy[@]}"
fi
clients=target/py-clients
if ! "$clients/bin/python" -c 'import s3fs, pandas, pyarrow, S3' >/dev/null 2>&1 \
   || ! cmp -s .ci/requirements-clients.txt "$clients/.requirements" ; then
  rm -rf "$clients"
  python3 -m venv "$clients"
  timed "$clients/bin/pip" install --quiet --disable-pip-version-check -r .ci/requirements-clients.txt
  cp .ci/requirements-clients.txt "$clients/.requirements"
fi
export S3X_TEST_CLIENTS_VENV="$PWD/$clients"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 nodejs npm
fi
js=target/js
if [ ! -f "$js/node_modules/@aws-sdk/client-s3/package.json" ] \
   || ! cmp -s tests/clients/js/package-lock.json "$js/package-lock.json" ; then
  rm -rf "$js"
  mkdir -p "$js"
  cp tests/clients/js/package.json tests/clients/js/package-lock.json "$js/"
  (cd "$js" && timed npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
export S3X_TEST_NODE_MODULES="$PWD/$js/node_modules"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo deny check licenses bans sources (deny.toml)"
deny_version=0.20.2
tools="${S3X_TOOLS_DIR:-target/tools}"
if ! "$tools/bin/cargo-deny" --version 2>/dev/null | grep -qx "cargo-deny $deny_version"; then
  deny_started=$(date +%s)
  cargo install --quiet --locked --root "$tools" --version "$deny_version" cargo-deny
  echo "installed cargo-deny $deny_version into $tools in $(( $(date +%s) - deny_started ))s"
fi
"$tools/bin/cargo-deny" --locked check --hide-inclusion-graph licenses bans sources

step "cargo test (unit, emulator, SigV4 vectors, integration, real clients)"
mkdir -p target
cargo test --workspace --locked 2>&1 | tee target/test-output.log
passed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^passed/) s += $i} END {print s + 0}' target/test-output.log)
failed=$(awk '/^test result:/ {for (i = 1; i <= NF; i++) if ($(i + 1) ~ /^failed/) s += $i} END {print s + 0}' target/test-output.log)

step "container image: build with buildah, SBOM, smoke test (deploy/image.sh)"
if [ "${S3X_TEST_IMAGE:-1}" = 0 ]; then
  echo "SKIPPED: S3X_TEST_IMAGE=0"
elif [ "$(id -u)" != 0 ]; then
  echo "SKIPPED: the image step needs root (buildah's vfs storage; the smoke test's chroot and namespaces)"
elif ! command -v buildah >/dev/null 2>&1 && ! command -v apt-get >/dev/null 2>&1; then
  echo "SKIPPED: buildah is not installed and there is no apt-get to install it with"
else
  bash deploy/image.sh
fi

step "validating deploy/"
bash deploy/validate.sh
step_done

printf '\nstep times:\n'
printf '  %s\n' "${timings[@]}"
printf '\nall checks passed in %ss\n' "$(( $(date +%s) - started ))"
printf 'tests: %s passed, %s failed\n' "$passed" "$failed"
