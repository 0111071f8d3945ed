#!/usr/bin/env bash
# Build the s3x-proxy container image with buildah, from scratch, write its SBOM, and smoke-test
# it. No Docker daemon is needed: buildah runs as root with the vfs storage driver, keeping its
# storage under target/image/ (nothing goes to /var/lib/containers).
#
#   bash deploy/image.sh [--no-smoke] [--no-sbom]     (as root; --no-* only to iterate faster)
#
# Steps:
#   1. cargo build --release of s3x-proxy for x86_64-unknown-linux-gnu with
#      RUSTFLAGS=-C target-feature=+crt-static (a static-pie binary, glibc and aws-lc inside),
#      symbols stripped; checked to have no ELF interpreter and no DT_NEEDED entries.
#   2. deploy/image/rootfs.sh lays out the tree (binary, CA roots, passwd/group, nsswitch.conf,
#      the CA directory owned by 65532); buildah copies it into a `from scratch` container,
#      applies deploy/image/config.json (user, ports, env, entrypoint, labels) and commits it.
#   3. Outputs, in target/image/:
#        s3x-proxy.oci.tar     the OCI archive, tagged s3x-proxy:VERSION
#        s3x-proxy.cdx.json    CycloneDX 1.5 SBOM: the crates in the binary (cargo-cyclonedx,
#                              trimmed to what `cargo tree` says was built), the Rust std, glibc
#                              and libgcc linked into it, the CA bundle (deploy/image/sbom.py)
#        size.txt              the sizes printed below
#      Push or load it with skopeo (`skopeo copy oci-archive:target/image/s3x-proxy.oci.tar
#      docker://REGISTRY/s3x-proxy:0.1.0`), `podman load -i`, or Docker 25+'s `docker load -i`.
#   4. deploy/image/smoke.sh runs the image against the S3 Express emulator (see that file).
#
# Tools: buildah (apt-get install buildah; installed here when missing and running as root),
# cargo-cyclonedx (cargo install --locked into target/tools on first use; about 4 minutes),
# python3, gzip, readelf, dpkg-query.
# Environment: S3X_IMAGE_DIR (default target/image), S3X_TOOLS_DIR (default target/tools).
set -euo pipefail
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${S3X_IMAGE_DIR:-$ROOT/target/image}"
TOOLS="${S3X_TOOLS_DIR:-$ROOT/target/tools}"
CONFIG="$ROOT/deploy/image/config.json"
TARGET=x86_64-unknown-linux-gnu
CYCLONEDX_VERSION=0.5.9
SMOKE=1
SBOM=1
for arg in "$@"; do
  case "$arg" in
    --no-smoke) SMOKE=0 ;;
    --no-sbom) SBOM=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

START=$SECONDS
log() { printf '==> %s\n' "$*"; }
die() { printf 'image.sh: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$((SECONDS - $1))s"; }

# --- Tools --------------------------------------------------------------------------------------
if ! command -v buildah >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing buildah (apt)"
    t=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends buildah >/dev/null
    log "buildah installed in $(elapsed "$t")"
  else
    die "buildah is not installed (Debian/Ubuntu: apt-get install buildah), and this is not root"
  fi
fi
[ "$(id -u)" = 0 ] || die "run as root: buildah's vfs storage and the smoke test's namespaces need it"
for tool in python3 gzip readelf; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done

# --- 1. The binary ------------------------------------------------------------------------------
log "cargo build --release --target $TARGET (static, crt-static)"
t=$SECONDS
# RUSTFLAGS with an explicit --target apply to the target's code only (not to build scripts and
# proc macros), so the static flag cannot break them; the artifacts go to target/$TARGET/.
RUSTFLAGS='-C target-feature=+crt-static' CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --release --locked --quiet --bin s3x-proxy --target "$TARGET"
BIN="$ROOT/target/$TARGET/release/s3x-proxy"
log "built in $(elapsed "$t"): $(stat -c %s "$BIN") bytes"
if readelf -lW "$BIN" | grep -q 'INTERP'; then
  die "$BIN asks for a dynamic loader: it is not statically linked"
fi
if readelf -dW "$BIN" | grep -q '(NEEDED)'; then
  die "$BIN needs shared libraries: $(readelf -dW "$BIN" | grep '(NEEDED)' | tr -s ' ')"
fi

# --- 2. The image -------------------------------------------------------------------------------
VERSION="$(cargo metadata --locked --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "s3x-proxy"))')"
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# Reproducible timestamps: the last commit's time (files in the layer and the image's creation).
EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
TAG="s3x-proxy:$VERSION"
ARCHIVE="$OUT/s3x-proxy.oci.tar"

BUILDAH=(buildah --root "$OUT/storage" --runroot "$OUT/runroot" --storage-driver vfs)
CTR=""
cleanup() {
  if [ -n "$CTR" ]; then
    "${BUILDAH[@]}" rm "$CTR" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

log "assembling $TAG with buildah $(buildah --version | awk '{print $3}') (from scratch, vfs)"
t=$SECONDS
mkdir -p "$OUT"
rm -rf "$OUT/rootfs" "$ARCHIVE" "$OUT/s3x-proxy.cdx.json" "$OUT/size.txt"
sh "$ROOT/deploy/image/rootfs.sh" "$BIN" /etc/ssl/certs/ca-certificates.crt "$OUT/rootfs"
# Each run starts from empty storage: the image is small and nothing is worth keeping.
rm -rf "$OUT/storage" "$OUT/runroot"
CTR="$("${BUILDAH[@]}" from --quiet scratch)"
MNT="$("${BUILDAH[@]}" mount "$CTR")"
# cp -a keeps modes and owners (the CA directory belongs to 65532).
cp -a "$OUT/rootfs/." "$MNT/"
"${BUILDAH[@]}" umount "$CTR" >/dev/null

mapfile -t CONFIG_ARGS < <(python3 - "$CONFIG" "$VERSION" "$REVISION" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
args = ["--user", c["user"], "--workingdir", c["workdir"], "--stop-signal", c["stop_signal"],
        "--entrypoint", json.dumps(c["entrypoint"]), "--cmd", json.dumps(c["cmd"]),
        "--os", "linux", "--arch", "amd64", "--created-by", "deploy/image.sh"]
for p in c["exposed_ports"]:
    args += ["--port", p]
for k, v in c["env"].items():
    args += ["--env", f"{k}={v}"]
labels = dict(c["labels"], **{"org.opencontainers.image.version": sys.argv[2],
                              "org.opencontainers.image.revision": sys.argv[3]})
for k, v in labels.items():
    args += ["--label", f"{k}={v}"]
print("\n".join(args))
PY
)
"${BUILDAH[@]}" config "${CONFIG_ARGS[@]}" "$CTR"
"${BUILDAH[@]}" commit --quiet --format oci --timestamp "$EPOCH" --rm "$CTR" \
  "oci-archive:$ARCHIVE:$TAG" >/dev/null
CTR=""
rm -rf "$OUT/storage" "$OUT/runroot"
log "committed in $(elapsed "$t"): $ARCHIVE"

# Sizes: the layer is an uncompressed tar (buildah's default); a registry stores it gzipped.
python3 - "$ARCHIVE" "$OUT/size.txt" <<'PY'
import gzip, hashlib, json, sys, tarfile
archive, out = sys.argv[1], sys.argv[2]
with tarfile.open(archive) as t:
    blob = lambda d: t.extractfile("blobs/" + d.replace(":", "/")).read()
    index = json.loads(t.extractfile("index.json").read())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    layers = [blob(l["digest"]) for l in manifest["layers"]]
raw = sum(len(gzip.decompress(l)) if l[:2] == b"\x1f\x8b" else len(l) for l in layers)
gz = sum(len(gzip.compress(l if l[:2] != b"\x1f\x8b" else gzip.decompress(l), 9)) for l in layers)
mb = lambda n: f"{n / 1e6:.1f} MB"
lines = [
    f"image: {len(layers)} layer(s), {raw} bytes uncompressed ({mb(raw)}), "
    f"{gz} bytes gzipped ({mb(gz)})",
    f"archive: {archive}",
]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join("    " + l for l in lines))
if raw > 25_000_000:
    print(f"    WARNING: {mb(raw)} uncompressed is over the 25 MB goal")
PY

# --- 3. The SBOM --------------------------------------------------------------------------------
sbom() {
  local t tmp
  if [ ! -x "$TOOLS/bin/cargo-cyclonedx" ] ||
    ! "$TOOLS/bin/cargo-cyclonedx" cyclonedx --version 2>/dev/null | grep -qx ".* $CYCLONEDX_VERSION"; then
    log "installing cargo-cyclonedx $CYCLONEDX_VERSION into $TOOLS (crates.io)"
    t=$SECONDS
    cargo install --quiet --locked --root "$TOOLS" --version "$CYCLONEDX_VERSION" cargo-cyclonedx
    log "cargo-cyclonedx installed in $(elapsed "$t")"
  fi
  log "SBOM: cargo-cyclonedx $CYCLONEDX_VERSION (the binary's crates) + deploy/image/sbom.py (the image)"
  t=$SECONDS
  tmp="$OUT/sbom"
  rm -rf "$tmp" "$ROOT/s3x-proxy_bin.cdx.json"
  mkdir -p "$tmp"
  # It writes NAME_bin.cdx.json beside Cargo.toml; move it out at once.
  SOURCE_DATE_EPOCH="$EPOCH" "$TOOLS/bin/cargo-cyclonedx" cyclonedx --quiet --format json \
    --spec-version 1.5 --target "$TARGET" --describe binaries --no-build-deps \
    --manifest-path "$ROOT/Cargo.toml"
  mv "$ROOT/s3x-proxy_bin.cdx.json" "$tmp/crates.cdx.json"
  cargo tree --locked --quiet -e normal --target "$TARGET" -p s3x-proxy --prefix none -f '{p}' \
    >"$tmp/cargo-tree.txt"
  python3 "$ROOT/deploy/image/sbom.py" "$tmp/crates.cdx.json" "$tmp/cargo-tree.txt" "$ARCHIVE" \
    "$OUT/rootfs" "$OUT/s3x-proxy.cdx.json"
  rm -rf "$tmp"
  log "SBOM written in $(elapsed "$t"): $OUT/s3x-proxy.cdx.json"
}
if [ "$SBOM" = 1 ]; then
  sbom
else
  log "SBOM skipped (--no-sbom)"
fi

# --- 4. Smoke test ------------------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
  bash "$ROOT/deploy/image/smoke.sh" "$ARCHIVE"
else
  log "smoke test skipped (--no-smoke)"
fi

echo
cat "$OUT/size.txt"
printf 'image.sh: done in %ds\n' "$((SECONDS - START))"
