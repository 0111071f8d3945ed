#!/usr/bin/env bash
# Smoke test of the built s3x-proxy image, without a container engine: the image's own root
# filesystem (buildah from + mount of the OCI archive) is run the way a container runtime would,
# with chroot and namespaces (unshare), against the S3 Express emulator.
#
#   bash deploy/image/smoke.sh [ARCHIVE]     (default target/image/s3x-proxy.oci.tar; as root)
#
# Outside any namespace, on the image as built:
#   - its OCI config is deploy/image/config.json's (user, entrypoint, cmd, ports, env, labels);
#   - its tree is exactly config.json's list of paths, modes and owners, with no shell;
#   - as UID 65532 (setpriv + find -writable, the kernel's own permission check) the only
#     writable path in the tree is the CA directory, even without a read-only root.
# Then, in fresh mount, network and PID namespaces (nothing listens on the host; everything dies
# with the namespace), set up like `docker run --read-only -v ca:/var/run/s3x-proxy/ca`:
#   - the image's tree bind-mounted read-only as the root, /proc, a minimal /dev, a tmpfs
#     (uid 65532, 0700) at the CA directory, /etc/hosts and /etc/resolv.conf, the emulator's CA;
#   - a DNS server (smoke-dns.py) answering 127.0.0.1 for *.amazonaws.com, and the emulator on
#     127.0.0.1:443, so the proxy runs with no --resolve: it finds S3 through the image's resolver;
#   - the proxy started from the image's Entrypoint and Env only (plus the emulator's test IAM
#     credentials, the region and the emulator's CA as S3X_PROXY_* variables), with
#     `chroot --userspec=65532:65532` and an empty environment otherwise.
# It checks: /readyz is 200 on the admin port; the proxy runs as 65532 with no capabilities and
# listens on 0.0.0.0:8080 and 0.0.0.0:9090; a 1 MiB PUT and its GET in endpoint mode, and the
# same GET through CONNECT with the CA the proxy created in its volume, return the same bytes;
# the CA files are owned by 65532 (key 0600); /metrics counts the requests and the session; the
# DNS server saw the proxy's queries; the image's binary, as 65532, cannot create a CA directory
# anywhere else on the read-only root, and touch as 65532 cannot write there either; SIGTERM ends
# the proxy with status 0.
set -euo pipefail
exec </dev/null

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
UID_GID=65532:65532
BUCKET=demo--usw2-az1--x-s3
ZONAL_HOST="$BUCKET.s3express-usw2-az1.us-west-2.amazonaws.com"
EMULATOR_KEY_ID=AKIDEMULATOREXAMPLE
EMULATOR_SECRET=emulator/secret/EXAMPLEKEY

log() { printf '==> %s\n' "$*"; }
die() { printf 'smoke.sh: %s\n' "$*" >&2; exit 1; }
CHECKS=0
ok() { CHECKS=$((CHECKS + 1)); printf '    ok   %s\n' "$*"; }
bad() { printf '    FAIL %s\n' "$*"; FAILED=1; }
FAILED=0

# ================================================================================================
# Inside the namespaces (PID 1 of the new PID namespace): bash smoke.sh --inside MNT WORK EMULATOR
# ================================================================================================
inside() {
  local mnt=$1 work=$2 emulator=$3
  local root="$work/root" pid
  # env -i empties PATH: run chroot by its path.
  CHROOT="$(command -v chroot)"
  ip link set lo up

  # The container's root: the image's tree, read-only, plus what a runtime mounts on it.
  mkdir -p "$root"
  mount --bind "$mnt" "$root"
  mount -o remount,bind,ro "$root"
  mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
  mount -t tmpfs -o mode=0755,nosuid,noexec,size=64k tmpfs "$root/dev"
  local d
  for d in null zero random urandom; do
    touch "$root/dev/$d"
    mount --bind "/dev/$d" "$root/dev/$d"
  done
  mount -o remount,ro,nosuid,noexec,size=64k tmpfs "$root/dev"
  # The CA volume (an emptyDir or a named volume): owned by the image's user.
  mount -t tmpfs -o "mode=0700,uid=${UID_GID%:*},gid=${UID_GID#*:},nosuid,nodev,noexec,size=1m" \
    tmpfs "$root/var/run/s3x-proxy/ca"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"$work/hosts"
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:2\n' >"$work/resolv.conf"
  mount --bind -o ro "$work/hosts" "$root/etc/hosts"
  mount --bind -o ro "$work/resolv.conf" "$root/etc/resolv.conf"

  # DNS and the emulator, on this namespace's own loopback.
  python3 "$HERE/smoke-dns.py" 127.0.0.1 "$work/dns.log" 2>"$work/dns.err" &
  env -u AWS_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR \
    "$emulator" --port 443 --dir "$work/emulator-ca" --bucket "$BUCKET" \
    >"$work/emulator.log" 2>&1 &
  for _ in $(seq 100); do
    grep -q 'listening on' "$work/emulator.log" 2>/dev/null && [ -s "$work/emulator-ca/ca.pem" ] && break
    sleep 0.1
  done
  grep -q 'listening on https://127.0.0.1:443' "$work/emulator.log" || {
    cat "$work/emulator.log"; die "the emulator did not start"
  }
  mount --bind -o ro "$work/emulator-ca/ca.pem" "$root/etc/s3x-smoke-upstream-ca.pem"

  # The proxy: the image's Entrypoint and Env, nothing inherited from this shell.
  mapfile -t image_env < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
print("\n".join(c["Env"]))' "$work/config.json")
  mapfile -t entrypoint < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
print("\n".join((c.get("Entrypoint") or []) + (c.get("Cmd") or [])))' "$work/config.json")
  local run_env=("${image_env[@]}" HOME=/nonexistent
    AWS_ACCESS_KEY_ID="$EMULATOR_KEY_ID" AWS_SECRET_ACCESS_KEY="$EMULATOR_SECRET"
    AWS_REGION=us-west-2 S3X_PROXY_REGION=us-west-2 S3X_PROXY_UPSTREAM_CA=/etc/s3x-smoke-upstream-ca.pem)
  env -i "${run_env[@]}" "$CHROOT" --userspec="$UID_GID" --groups= "$root" "${entrypoint[@]}" \
    >"$work/proxy.log" 2>&1 &
  pid=$!

  local status=""
  for _ in $(seq 300); do
    status="$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' http://127.0.0.1:9090/readyz || true)"
    [ "$status" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$status" = 200 ]; then ok "/readyz on the admin port (0.0.0.0:9090) answers 200"; else
    bad "/readyz answered ${status:-nothing}"; cat "$work/proxy.log"; return 1
  fi

  # Who runs it.
  local uids gids caps exe
  uids="$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
  gids="$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
  caps="$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")"
  exe="$(readlink "/proc/$pid/exe")"
  if [ "$uids" = "65532 65532 65532 65532" ] && [ "$gids" = "65532 65532 65532 65532" ] &&
    [ "$caps" = 0000000000000000 ]; then
    ok "the proxy runs as uid/gid 65532 (real, effective, saved, fs), no effective capabilities"
  else
    bad "the proxy runs as uid [$uids] gid [$gids] with CapEff $caps"
  fi
  if [ "$exe" = "$root/usr/local/bin/s3x-proxy" ]; then
    ok "the process is the image's /usr/local/bin/s3x-proxy (chroot: $root)"
  else
    bad "the process is $exe"
  fi
  local listening
  listening="$(ss -Hltn | awk '{print $4}' | sort | tr '\n' ' ')"
  if [[ "$listening" == *"0.0.0.0:8080 "* && "$listening" == *"0.0.0.0:9090 "* ]]; then
    ok "listening on 0.0.0.0:8080 and 0.0.0.0:9090, from the image's Env"
  else
    bad "listening sockets: $listening"
  fi

  # S3 through it.
  head -c 1048576 /dev/urandom >"$work/object"
  local want code
  want="$(sha256sum <"$work/object" | cut -d' ' -f1)"
  local curl_env=(env -u AWS_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR -u CURL_CA_BUNDLE
    -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u ALL_PROXY -u all_proxy)
  code="$("${curl_env[@]}" curl -sS --noproxy '*' -o "$work/put.out" -w '%{http_code}' \
    -T "$work/object" "http://127.0.0.1:8080/$BUCKET/smoke/object")" || true
  if [ "$code" = 200 ]; then ok "PUT 1 MiB (endpoint mode, path-style): 200"; else
    bad "PUT answered $code: $(head -c 400 "$work/put.out" 2>/dev/null)"
  fi
  code="$("${curl_env[@]}" curl -sS --noproxy '*' -o "$work/get1" -w '%{http_code}' \
    "http://127.0.0.1:8080/$BUCKET/smoke/object")" || true
  if [ "$code" = 200 ] && [ "$(sha256sum <"$work/get1" | cut -d' ' -f1)" = "$want" ]; then
    ok "GET (endpoint mode): 200, same sha256"
  else
    bad "GET answered $code with $(stat -c %s "$work/get1" 2>/dev/null) bytes"
  fi
  local ca_pem="$root/var/run/s3x-proxy/ca/ca.pem"
  code="$("${curl_env[@]}" curl -sS --proxy http://127.0.0.1:8080 --cacert "$ca_pem" \
    -o "$work/get2" -w '%{http_code}' "https://$ZONAL_HOST/smoke/object")" || true
  if [ "$code" = 200 ] && [ "$(sha256sum <"$work/get2" | cut -d' ' -f1)" = "$want" ]; then
    ok "GET https://$ZONAL_HOST through CONNECT, trusting the CA from the volume: 200, same sha256"
  else
    bad "GET through CONNECT answered $code"
  fi
  local key_stat pem_stat
  key_stat="$(stat -c '%u:%g %a' "$root/var/run/s3x-proxy/ca/ca-key.pem" 2>/dev/null || echo missing)"
  pem_stat="$(stat -c '%u:%g' "$ca_pem" 2>/dev/null || echo missing)"
  if [ "$key_stat" = "65532:65532 600" ] && [ "$pem_stat" = 65532:65532 ]; then
    ok "the proxy wrote its CA into the volume (ca-key.pem 65532:65532 0600)"
  else
    bad "CA files: ca-key.pem [$key_stat], ca.pem [$pem_stat]"
  fi

  # Metrics and DNS.
  curl -sS --noproxy '*' http://127.0.0.1:9090/metrics >"$work/metrics" || true
  if grep -Eq '^s3x_proxy_requests_total\{operation="PutObject",status="200"\} 1$' "$work/metrics" &&
    grep -Eq '^s3x_proxy_requests_total\{operation="GetObject",status="200"\} 2$' "$work/metrics" &&
    grep -Eq '^s3x_proxy_sessions_created_total\{mode="ReadWrite",result="ok"\} [1-9]' "$work/metrics"; then
    ok "/metrics: PutObject 200 = 1, GetObject 200 = 2, a ReadWrite session created"
  else
    bad "/metrics lacks the expected counters:"
    grep -E '^s3x_proxy_(requests|sessions_created)_total' "$work/metrics" | sed 's/^/      /'
  fi
  if grep -q "^A .*\.amazonaws\.com$" "$work/dns.log" 2>/dev/null; then
    ok "the proxy resolved S3 through DNS (static glibc, /etc/resolv.conf): $(sort -u "$work/dns.log" | grep -c amazonaws) distinct queries"
  else
    bad "the DNS server saw no query from the proxy: $(cat "$work/dns.log" "$work/dns.err" 2>/dev/null)"
  fi

  # Nothing but the CA volume is writable. The image's own binary tries first: `s3x-proxy ca`
  # creates its CA directory, which works in the volume and must fail everywhere else.
  local out
  if out="$(env -i "${run_env[@]}" S3X_PROXY_CA_DIR=/var/run/s3x-proxy/ca \
    "$CHROOT" --userspec="$UID_GID" --groups= "$root" "${entrypoint[@]}" ca 2>&1)" &&
    [ "$out" = /var/run/s3x-proxy/ca/ca.pem ]; then
    ok "\`s3x-proxy ca\` as 65532 in the CA volume: $out"
  else
    bad "\`s3x-proxy ca\` in the CA volume failed: $out"
  fi
  local dir ro_ok=1 reasons=""
  for dir in /var/run/s3x-proxy/other /etc/s3x-proxy /s3x-proxy-ca /usr/local/bin/ca; do
    if out="$(env -i "${run_env[@]}" S3X_PROXY_CA_DIR="$dir" \
      "$CHROOT" --userspec="$UID_GID" --groups= "$root" "${entrypoint[@]}" ca 2>&1)"; then
      bad "\`s3x-proxy ca\` created a CA in $dir: $out"
      ro_ok=0
    elif [[ "$out" == *"Read-only file system"* ]]; then
      reasons="$reasons $dir"
    else
      bad "\`s3x-proxy ca\` with $dir failed, but not because the root is read-only: $out"
      ro_ok=0
    fi
  done
  # touch, as 65532: it can write in the CA volume (the control), nowhere else.
  local as_user=(setpriv --reuid="${UID_GID%:*}" --regid="${UID_GID#*:}" --clear-groups)
  if "${as_user[@]}" touch "$root/var/run/s3x-proxy/ca/.smoke-write"; then
    rm -f "$root/var/run/s3x-proxy/ca/.smoke-write"
  else
    bad "65532 cannot write in the CA volume with touch"
    ro_ok=0
  fi
  for dir in / /etc /usr/local/bin /var/run/s3x-proxy; do
    if "${as_user[@]}" touch "$root$dir/.smoke-write" 2>/dev/null; then
      bad "65532 could create $dir/.smoke-write"
      ro_ok=0
    fi
  done
  if [ "$ro_ok" = 1 ]; then
    ok "as 65532, \`s3x-proxy ca\` fails with EROFS for${reasons}; touch works in the CA volume only"
  fi

  # Graceful stop.
  kill -TERM "$pid"
  local rc=0
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    bad "the proxy still runs 30s after SIGTERM"
  else
    wait "$pid" || rc=$?
    if [ "$rc" = 0 ]; then ok "SIGTERM: the proxy drained and exited with status 0"; else
      bad "SIGTERM: exit status $rc"
    fi
  fi
  if [ "$FAILED" != 0 ]; then
    echo "    --- proxy log (last 40 lines)"
    tail -n 40 "$work/proxy.log" | sed 's/^/    /'
  fi
  rm -f "$work/object" "$work/get1" "$work/get2"
  echo "$CHECKS" >"$work/inside.checks"
  return "$FAILED"
}

if [ "${1:-}" = --inside ]; then
  shift
  inside "$@"
  exit $?
fi

# ================================================================================================
# Outside: prepare, check the image at rest, then run the rest in namespaces.
# ================================================================================================
ARCHIVE="${1:-$ROOT/target/image/s3x-proxy.oci.tar}"
WORK="$(dirname "$ARCHIVE")/smoke"
START=$SECONDS
[ "$(id -u)" = 0 ] || die "run as root (buildah's vfs storage, chroot and namespaces need it)"
[ -f "$ARCHIVE" ] || die "no image at $ARCHIVE: run deploy/image.sh first"
for tool in buildah unshare chroot setpriv ip ss curl python3 sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done

log "smoke test of $ARCHIVE"
log "building the emulator (cargo build --example emulator)"
cargo build --locked --quiet --example emulator --manifest-path "$ROOT/Cargo.toml"
EMULATOR="$ROOT/target/debug/examples/emulator"

rm -rf "$WORK"
mkdir -p "$WORK"
BUILDAH=(buildah --root "$WORK/storage" --runroot "$WORK/runroot" --storage-driver vfs)
CTR=""
cleanup() {
  if [ -n "$CTR" ]; then "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK/storage" "$WORK/runroot"
}
trap cleanup EXIT
CTR="$("${BUILDAH[@]}" from --quiet --pull-always "oci-archive:$ARCHIVE")"
MNT="$("${BUILDAH[@]}" mount "$CTR")"
python3 -c '
import json, sys
sys.path.insert(0, sys.argv[1])
import image_checks
print(json.dumps(image_checks.archive_config(sys.argv[2])))' "$HERE" "$ARCHIVE" >"$WORK/config.json"

log "the image at rest"
if python3 "$HERE/image_checks.py" config "$ARCHIVE"; then CHECKS=$((CHECKS + 1)); else FAILED=1; fi
if python3 "$HERE/image_checks.py" tree "$MNT"; then CHECKS=$((CHECKS + 1)); else FAILED=1; fi
# buildah's storage directory is 0700, so the tree is bind-mounted where 65532 can reach it (in
# a private mount namespace, gone when the command ends).
mkdir -p "$WORK/at-rest"
# shellcheck disable=SC2016 # $1..$4 are the inner sh's arguments
writable="$(unshare --mount --propagation private sh -c '
  mount --bind "$1" "$2" && exec setpriv --reuid="$3" --regid="$4" --clear-groups \
    find "$2" -writable -printf "/%P\n"' sh "$MNT" "$WORK/at-rest" "${UID_GID%:*}" "${UID_GID#*:}" |
  sort | tr '\n' ' ')"
if [ "$writable" = "/var/run/s3x-proxy/ca " ]; then
  ok "as 65532 the only writable path in the image is /var/run/s3x-proxy/ca (read-write root)"
else
  bad "as 65532 these paths are writable: ${writable:-none}"
fi
[ "$FAILED" = 0 ] || die "the image at rest failed its checks"

# Mount points a runtime would create (in this throwaway container only, never in the image).
mkdir "$MNT/proc" "$MNT/dev"
touch "$MNT/etc/hosts" "$MNT/etc/resolv.conf" "$MNT/etc/s3x-smoke-upstream-ca.pem"

log "the image running (chroot, read-only root, own mount/network/PID namespaces)"
rc=0
timeout 180 unshare --mount --net --pid --fork --kill-child --mount-proc --propagation private \
  bash "$HERE/smoke.sh" --inside "$MNT" "$WORK" "$EMULATOR" || rc=$?
INSIDE_CHECKS="$(cat "$WORK/inside.checks" 2>/dev/null || echo 0)"
if [ "$rc" != 0 ]; then
  die "image smoke test FAILED (status $rc; logs in $WORK)"
fi
printf 'image smoke test: all %d checks passed in %ds\n' "$((CHECKS + INSIDE_CHECKS))" "$((SECONDS - START))"
