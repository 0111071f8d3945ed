#!/usr/bin/env python3
"""Semantic checks for deploy/, run by deploy/validate.sh inside its tool venv (needs PyYAML).

    validate.py RENDERED_DIR OUT_DIR

RENDERED_DIR holds one `kubectl kustomize` output per kustomization (NAME.yaml). This script:

* splits each render into core resources (NAME.core.yaml, for kubernetes-validate --strict) and
  prometheus-operator resources (checked here: known keys, required fields, duration formats);
* checks the things a schema cannot see: selectors that match, named ports that exist, the
  security context, probes on the admin port, the CA wiring, the native-sidecar layout, the
  proxy environment of the app container, the termination grace period against the proxy's
  shutdown grace;
* checks that alerts and the Grafana dashboard use only the metrics and labels the proxy exports;
* writes promtool inputs to OUT_DIR: s3x-proxy.rules.yaml (the PrometheusRule groups),
  s3x-proxy.test-rules.yaml (the same without annotations, for the unit tests) and
  dashboard.rules.yaml (every dashboard query as a recording rule, so promtool parses it).

Exit status 1 if any check failed; every failure is printed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
DASHBOARD = DEPLOY / "grafana" / "s3x-proxy.json"
PROXY_CONTAINER = "s3x-proxy"
PROXY_IMAGE = "s3x-proxy"

# --- The metrics contract (DESIGN.md section 3) ------------------------------------------------
COUNTERS = {
    # `bucket` only with --metrics-bucket-label.
    "s3x_proxy_requests_total": {"operation", "status", "bucket"},
    "s3x_proxy_sessions_created_total": {"mode", "result"},
    "s3x_proxy_session_cache_lookups_total": {"result"},
    "s3x_proxy_bytes_total": {"direction"},
    "s3x_proxy_upstream_retries_total": {"reason"},
}
GAUGES = {
    "s3x_proxy_session_cache_entries": set(),
    "s3x_proxy_connections_active": set(),
}
HISTOGRAMS = {
    "s3x_proxy_request_duration_seconds": {"operation"},
    "s3x_proxy_upstream_duration_seconds": {"operation"},
    "s3x_proxy_create_session_duration_seconds": set(),
}
LABEL_VALUES = {
    ("s3x_proxy_sessions_created_total", "result"): {"ok", "error"},
    ("s3x_proxy_sessions_created_total", "mode"): {"ReadOnly", "ReadWrite"},
    ("s3x_proxy_session_cache_lookups_total", "result"): {"hit", "miss", "refresh"},
    ("s3x_proxy_bytes_total", "direction"): {"upload", "download"},
}
# Labels Prometheus (and the prometheus-operator) attach to every scraped series.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}
# Series that are not the proxy's but may appear in alerts (never in the dashboard).
ALERT_ONLY_SERIES = {"up": set()}


def exported_series() -> dict[str, set[str]]:
    series: dict[str, set[str]] = {}
    series.update(COUNTERS)
    series.update(GAUGES)
    for name, labels in HISTOGRAMS.items():
        series[name + "_bucket"] = labels | {"le"}
        series[name + "_sum"] = set(labels)
        series[name + "_count"] = set(labels)
    return series


PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}
DURATION_RE = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)

FAILURES: list[str] = []


def fail(where: str, msg: str) -> None:
    FAILURES.append(f"{where}: {msg}")


# --- PromQL scanning ---------------------------------------------------------------------------
def promql_selectors(expr: str):
    """Yield (metric, [(label, op, value)]) for each vector selector, and the grouping labels."""
    text = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "X", expr)  # Grafana variables
    series = []
    # metric{matchers} or bare metric; strings are kept inside braces only.
    token = re.compile(
        r'"(?:[^"\\]|\\.)*"|\{[^}]*\}|\[[^\]]*\]'
        r"|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?(?:ms|[smhdwy])?"  # numbers, offsets
        r"|[A-Za-z_:][A-Za-z0-9_:]*|.",
        re.S,
    )
    tokens = [m.group(0) for m in token.finditer(text)]
    grouping: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", t):
            j = i + 1
            while j < len(tokens) and tokens[j].isspace():
                j += 1
            nxt = tokens[j] if j < len(tokens) else ""
            if t in ("by", "without", "on", "ignoring", "group_left", "group_right") and nxt == "(":
                k = j + 1
                while k < len(tokens) and tokens[k] != ")":
                    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tokens[k]):
                        grouping.append(tokens[k])
                    k += 1
                i = k + 1
                continue
            # A function call, an aggregation (`sum by (x) (...)`) or a keyword.
            if nxt == "(" or nxt in ("by", "without") or t.lower() in PROMQL_KEYWORDS:
                i += 1
                continue
            # Anything else is a metric name.
            matchers = []
            if nxt.startswith("{"):
                matchers = parse_matchers(nxt)
                i = j
            series.append((t, matchers))
        elif t.startswith("{"):
            # {__name__=...} style selector without a metric name.
            series.append(("", parse_matchers(t)))
        i += 1
    return series, grouping


def parse_matchers(block: str):
    inner = block.strip()[1:-1]
    return re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', inner)


def check_promql(where: str, expr: str, allowed: dict[str, set[str]]) -> None:
    series, grouping = promql_selectors(expr)
    if not series:
        fail(where, f"no metric in expression: {expr!r}")
    all_labels = set().union(*allowed.values()) | TARGET_LABELS | {"le"}
    for metric, matchers in series:
        if metric not in allowed:
            hint = ""
            if metric in HISTOGRAMS:
                hint = " (a histogram: use _bucket, _sum or _count)"
            fail(where, f"unknown metric {metric!r}{hint}")
            continue
        for label, op, value in matchers:
            if label not in allowed[metric] | TARGET_LABELS:
                fail(where, f"{metric} has no label {label!r}")
            known = LABEL_VALUES.get((metric, label))
            if known and op == "=" and value not in known:
                fail(where, f"{metric}{{{label}}} is never {value!r} (values: {sorted(known)})")
    for label in grouping:
        if label not in all_labels:
            fail(where, f"grouping by unknown label {label!r}")


# --- Kubernetes helpers ------------------------------------------------------------------------
def load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def ident(doc: dict) -> str:
    md = doc.get("metadata", {})
    ns = md.get("namespace")
    return f"{doc.get('kind')}/{(ns + '/') if ns else ''}{md.get('name')}"


def pod_spec(doc: dict):
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"]["spec"], doc["spec"]["template"].get("metadata", {})
    if doc.get("kind") == "Pod":
        return doc["spec"], doc.get("metadata", {})
    return None, None


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", []) or []}


def parse_seconds(value: str) -> float:
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)(ms|s|m|h)", value):
        total += float(num) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if not total and value.strip().isdigit():
        total = float(value)
    return total


def selector_matches(selector: dict, labels: dict) -> bool:
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def named_ports(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", []) or [] if "name" in p}


def check_container_security(where: str, pod: dict, c: dict) -> None:
    psc = pod.get("securityContext", {}) or {}
    csc = c.get("securityContext", {}) or {}
    name = f"{where} container {c['name']}"
    if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
        fail(name, "runAsNonRoot is not true")
    if csc.get("readOnlyRootFilesystem") is not True:
        fail(name, "readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        fail(name, "allowPrivilegeEscalation is not false")
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        fail(name, "capabilities.drop does not contain ALL")
    if (csc.get("capabilities") or {}).get("add"):
        fail(name, "adds capabilities")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        fail(name, f"seccompProfile is {seccomp!r}, want RuntimeDefault")
    res = c.get("resources") or {}
    for kind, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
        for k in keys:
            if k not in (res.get(kind) or {}):
                fail(name, f"resources.{kind}.{k} is not set")
    image = c.get("image", "")
    tail = image.rsplit("/", 1)[-1]
    if "@" not in image and (":" not in tail or tail.endswith(":latest")):
        fail(name, f"image {image!r} is not pinned to a tag or digest")


def check_proxy_container(where: str, pod: dict, c: dict, sidecar: bool) -> None:
    name = f"{where} container {c['name']}"
    env = env_of(c)
    ports = named_ports(c)
    admin = env.get("S3X_PROXY_ADMIN_LISTEN", "127.0.0.1:9090")
    listen = env.get("S3X_PROXY_LISTEN", "127.0.0.1:8080")
    admin_host, _, admin_port = admin.rpartition(":")
    if admin_host in ("127.0.0.1", "localhost", "[::1]"):
        fail(name, f"S3X_PROXY_ADMIN_LISTEN={admin}: kubelet probes reach the pod IP, not loopback")
    if ports.get("admin") != int(admin_port or 0):
        fail(name, f"port 'admin' ({ports.get('admin')}) does not match S3X_PROXY_ADMIN_LISTEN={admin}")
    if sidecar:
        if not listen.startswith("127.0.0.1:"):
            fail(name, f"sidecar S3X_PROXY_LISTEN={listen}: keep the proxy on loopback")
    else:
        if not listen.startswith("0.0.0.0:"):
            fail(name, f"shared S3X_PROXY_LISTEN={listen}: must listen on 0.0.0.0")
        if ports.get("proxy") != int(listen.rpartition(":")[2]):
            fail(name, f"port 'proxy' does not match S3X_PROXY_LISTEN={listen}")
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"),
                        ("livenessProbe", "/healthz")):
        p = (c.get(probe) or {}).get("httpGet")
        if not p:
            fail(name, f"{probe} (httpGet {path}) is missing")
            continue
        if p.get("path") != path:
            fail(name, f"{probe} path is {p.get('path')!r}, want {path}")
        port = p.get("port")
        if port not in ("admin", ports.get("admin")):
            fail(name, f"{probe} port {port!r} is not the admin port")
    grace = parse_seconds(env.get("S3X_PROXY_SHUTDOWN_GRACE", "25s"))
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    if not tgps > grace:
        fail(where, f"terminationGracePeriodSeconds {tgps} must exceed the shutdown grace {grace}s")
    ca_dir = env.get("S3X_PROXY_CA_DIR")
    if not ca_dir:
        fail(name, "S3X_PROXY_CA_DIR is not set (the default is a per-user dir on a read-only fs)")
        return
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", []) or []}
    m = mounts.get(ca_dir)
    if not m:
        fail(name, f"nothing is mounted at S3X_PROXY_CA_DIR={ca_dir}")
        return
    vol = {v["name"]: v for v in pod.get("volumes", []) or []}.get(m["name"], {})
    if sidecar:
        if "emptyDir" not in vol:
            fail(name, "the sidecar's CA directory should be an emptyDir shared with the app")
        if m.get("readOnly"):
            fail(name, "the sidecar must be able to write its CA directory")
    else:
        if "secret" not in vol:
            fail(name, "a shared Deployment must load its CA from a Secret (all replicas, one CA)")
        if not m.get("readOnly"):
            fail(name, "mount the CA Secret readOnly")
        items = {i["key"] for i in (vol.get("secret") or {}).get("items", []) or []}
        if items and items != {"ca.pem", "ca-key.pem"}:
            fail(name, f"CA Secret items are {sorted(items)}, want ca.pem and ca-key.pem")


def check_app_container(where: str, pod: dict, c: dict, proxy: dict) -> None:
    name = f"{where} container {c['name']}"
    env = env_of(c)
    listen = env_of(proxy).get("S3X_PROXY_LISTEN", "127.0.0.1:8080")
    want = "http://" + listen
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        if env.get(var) != want:
            fail(name, f"{var} is {env.get(var)!r}, want {want!r}")
    required = {"169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::23",
                "localhost", "127.0.0.1", ".svc", ".cluster.local"}
    for var in ("NO_PROXY", "no_proxy"):
        have = set((env.get(var) or "").split(","))
        if not required <= have:
            fail(name, f"{var} lacks {sorted(required - have)}")
    bundle = env.get("AWS_CA_BUNDLE")
    proxy_ca = env_of(proxy).get("S3X_PROXY_CA_DIR")
    proxy_mount = next((m for m in proxy.get("volumeMounts", []) if m["mountPath"] == proxy_ca), None)
    app_mount = next((m for m in c.get("volumeMounts", []) if proxy_mount and m["name"] == proxy_mount["name"]), None)
    if not app_mount:
        fail(name, "does not mount the proxy's CA volume")
        return
    if not app_mount.get("readOnly"):
        fail(name, "mounts the CA volume read-write; the app only needs to read ca.pem")
    if bundle != app_mount["mountPath"].rstrip("/") + "/ca.pem":
        fail(name, f"AWS_CA_BUNDLE={bundle!r} is not ca.pem in the CA mount {app_mount['mountPath']}")


def check_render(name: str, docs: list[dict]) -> None:
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    if len(namespaces) > 1:
        fail(name, f"resources span several namespaces: {sorted(map(str, namespaces))}")
    for ns in by_kind.get("Namespace", []):
        if namespaces and ns["metadata"]["name"] not in namespaces:
            fail(name, f"Namespace {ns['metadata']['name']} is not the one the resources use")

    workloads = [d for d in docs if pod_spec(d)[0] is not None]
    service_accounts = {d["metadata"]["name"]: d for d in by_kind.get("ServiceAccount", [])}
    proxies_seen = 0
    for w in workloads:
        where = f"{name}: {ident(w)}"
        pod, meta = pod_spec(w)
        labels = meta.get("labels", {}) or {}
        sel = (w["spec"].get("selector") or {}).get("matchLabels", {})
        if not selector_matches(sel, labels):
            fail(where, f"selector {sel} does not match the pod labels {labels}")
        sa = pod.get("serviceAccountName")
        if sa and service_accounts and sa not in service_accounts:
            fail(where, f"serviceAccountName {sa} is not defined here")
        inits = pod.get("initContainers", []) or []
        containers = pod.get("containers", []) or []
        for c in inits + containers:
            check_container_security(where, pod, c)
        sidecars = [c for c in inits if c["name"] == PROXY_CONTAINER]
        mains = [c for c in containers if c["name"] == PROXY_CONTAINER]
        for c in sidecars:
            proxies_seen += 1
            if c.get("restartPolicy") != "Always":
                fail(where, "the s3x-proxy init container needs restartPolicy: Always (native sidecar)")
            check_proxy_container(where, pod, c, sidecar=True)
            for app in containers:
                check_app_container(where, pod, app, c)
        for c in mains:
            proxies_seen += 1
            check_proxy_container(where, pod, c, sidecar=False)
            if w["kind"] == "Deployment":
                if w["spec"].get("replicas", 1) < 2:
                    fail(where, "a shared proxy Deployment needs replicas >= 2")
                if not pod.get("topologySpreadConstraints"):
                    fail(where, "no topologySpreadConstraints")
        if (sidecars or mains) and sa in service_accounts:
            ann = service_accounts[sa]["metadata"].get("annotations", {}) or {}
            if "eks.amazonaws.com/role-arn" not in ann:
                fail(where, f"ServiceAccount {sa} has no eks.amazonaws.com/role-arn (IRSA) annotation")

    pods = []
    for w in workloads:
        pod, meta = pod_spec(w)
        ports: dict[str, int] = {}
        for c in (pod.get("containers", []) or []) + (pod.get("initContainers", []) or []):
            ports.update(named_ports(c))
        pods.append((w, meta.get("labels", {}) or {}, ports))

    def pods_for(selector: dict):
        return [p for p in pods if selector_matches(selector, p[1])]

    services = by_kind.get("Service", [])
    for s in services:
        where = f"{name}: {ident(s)}"
        matched = pods_for(s["spec"].get("selector") or {})
        if not matched:
            fail(where, f"selector {s['spec'].get('selector')} matches no pod template")
        for port in s["spec"].get("ports", []):
            tp = port.get("targetPort", port["port"])
            for w, _, ports in matched:
                if isinstance(tp, str) and tp not in ports:
                    fail(where, f"targetPort {tp!r} is not a port of {ident(w)}")
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        where = f"{name}: {ident(h)}"
        ref = h["spec"]["scaleTargetRef"]
        if not any(w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"] for w in workloads):
            fail(where, f"scaleTargetRef {ref['kind']}/{ref['name']} is not defined here")
        if h["spec"].get("minReplicas", 1) < 2:
            fail(where, "minReplicas < 2")
        if h["spec"]["maxReplicas"] < h["spec"].get("minReplicas", 1):
            fail(where, "maxReplicas < minReplicas")
    for p in by_kind.get("PodDisruptionBudget", []):
        if not pods_for((p["spec"].get("selector") or {}).get("matchLabels", {})):
            fail(f"{name}: {ident(p)}", "selector matches no pod template")
    for np in by_kind.get("NetworkPolicy", []):
        where = f"{name}: {ident(np)}"
        matched = pods_for((np["spec"].get("podSelector") or {}).get("matchLabels", {}))
        if not matched:
            fail(where, "podSelector matches no pod template")
        for rule in np["spec"].get("ingress", []) or []:
            for port in rule.get("ports", []) or []:
                for w, _, ports in matched:
                    if isinstance(port.get("port"), str) and port["port"] not in ports:
                        fail(where, f"ingress port {port['port']!r} is not a port of {ident(w)}")
        egress_ports = {p.get("port") for r in np["spec"].get("egress", []) or [] for p in r.get("ports", []) or []}
        if "Egress" in np["spec"].get("policyTypes", []) and not {53, 443} <= egress_ports:
            fail(where, "egress must allow DNS (53) and HTTPS (443)")
    for sm in by_kind.get("ServiceMonitor", []):
        where = f"{name}: {ident(sm)}"
        if not services:
            continue  # rendered on its own (monitoring/): nothing to match against
        sel = (sm["spec"].get("selector") or {}).get("matchLabels", {})
        matched = [s for s in services if selector_matches(sel, s["metadata"].get("labels", {}) or {})]
        if not matched:
            fail(where, f"selector {sel} matches no Service")
        for ep in sm["spec"].get("endpoints", []):
            for s in matched:
                if ep.get("port") not in {p.get("name") for p in s["spec"]["ports"]}:
                    fail(where, f"endpoint port {ep.get('port')!r} is not a port of {ident(s)}")
    if name in ("base",) or name.startswith("overlay-") or name == "sidecar":
        if not proxies_seen:
            fail(name, "no s3x-proxy container found")


# --- prometheus-operator resources -------------------------------------------------------------
SM_SPEC_KEYS = {
    "jobLabel", "targetLabels", "podTargetLabels", "endpoints", "selector", "selectorMechanism",
    "namespaceSelector", "sampleLimit", "scrapeProtocols", "fallbackScrapeProtocol",
    "targetLimit", "labelLimit", "labelNameLengthLimit", "labelValueLengthLimit",
    "keepDroppedTargets", "attachMetadata", "scrapeClass", "bodySizeLimit",
    "scrapeClassicHistograms", "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor",
    "convertClassicHistogramsToNHCB", "serviceDiscoveryRole",
}
SM_ENDPOINT_KEYS = {
    "port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout", "tlsConfig",
    "bearerTokenFile", "bearerTokenSecret", "authorization", "honorLabels", "honorTimestamps",
    "trackTimestampsStaleness", "basicAuth", "oauth2", "metricRelabelings", "relabelings",
    "proxyUrl", "noProxy", "proxyFromEnvironment", "proxyConnectHeader", "followRedirects",
    "enableHttp2", "filterRunning",
}
GROUP_KEYS = {"name", "interval", "rules", "partial_response_strategy", "limit", "query_offset", "labels"}
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


def check_keys(where: str, obj: dict, allowed: set[str]) -> None:
    for k in obj:
        if k not in allowed:
            fail(where, f"unknown field {k!r}")


def check_duration(where: str, value) -> None:
    if not isinstance(value, str) or not DURATION_RE.match(value):
        fail(where, f"{value!r} is not a Prometheus duration")


def check_servicemonitor(where: str, doc: dict) -> None:
    check_keys(where, doc, {"apiVersion", "kind", "metadata", "spec"})
    spec = doc.get("spec") or {}
    check_keys(where + " spec", spec, SM_SPEC_KEYS)
    if not isinstance(spec.get("selector"), dict):
        fail(where, "spec.selector is required")
    eps = spec.get("endpoints")
    if not isinstance(eps, list) or not eps:
        fail(where, "spec.endpoints must be a non-empty list")
        return
    for i, ep in enumerate(eps):
        w = f"{where} endpoints[{i}]"
        check_keys(w, ep, SM_ENDPOINT_KEYS)
        for k in ("interval", "scrapeTimeout"):
            if k in ep:
                check_duration(f"{w}.{k}", ep[k])
        if ep.get("scheme", "http") not in ("http", "https", "HTTP", "HTTPS"):
            fail(w, f"scheme {ep.get('scheme')!r}")
    admin = [ep for ep in eps if ep.get("port") == "admin" and ep.get("path", "/metrics") == "/metrics"]
    if not admin:
        fail(where, "no endpoint scrapes port 'admin' at /metrics")


def check_prometheusrule(where: str, doc: dict, allowed_series: dict[str, set[str]]) -> None:
    check_keys(where, doc, {"apiVersion", "kind", "metadata", "spec"})
    spec = doc.get("spec") or {}
    check_keys(where + " spec", spec, {"groups"})
    groups = spec.get("groups")
    if not isinstance(groups, list) or not groups:
        fail(where, "spec.groups must be a non-empty list")
        return
    names = set()
    for g in groups:
        w = f"{where} group {g.get('name')!r}"
        check_keys(w, g, GROUP_KEYS)
        if not g.get("name") or g["name"] in names:
            fail(w, "group names must be set and unique")
        names.add(g.get("name"))
        if "interval" in g:
            check_duration(w + ".interval", g["interval"])
        for r in g.get("rules") or []:
            rw = f"{w} rule {r.get('alert') or r.get('record')!r}"
            check_keys(rw, r, RULE_KEYS)
            if ("alert" in r) == ("record" in r):
                fail(rw, "exactly one of alert/record is required")
            if not isinstance(r.get("expr"), str) or not r["expr"].strip():
                fail(rw, "expr must be a non-empty string")
                continue
            for k in ("for", "keep_firing_for"):
                if k in r:
                    check_duration(f"{rw}.{k}", r[k])
            if "alert" in r:
                if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    fail(rw, "labels.severity must be critical, warning or info")
                for a in ("summary", "description"):
                    if not (r.get("annotations") or {}).get(a):
                        fail(rw, f"annotations.{a} is missing")
            check_promql(rw, r["expr"], allowed_series)


# --- Grafana dashboard -------------------------------------------------------------------------
def check_dashboard(out: Path) -> None:
    where = "grafana/s3x-proxy.json"
    try:
        dash = json.loads(DASHBOARD.read_text())
    except (OSError, ValueError) as e:
        fail(where, f"not valid JSON: {e}")
        return
    for k in ("title", "uid", "panels", "templating", "schemaVersion"):
        if k not in dash:
            fail(where, f"missing {k!r}")
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        fail(where, "needs a templating variable 'datasource' of type datasource, query prometheus")
    series = exported_series()
    rules = []
    ids = set()
    panels = list(dash.get("panels", []))
    for p in list(panels):
        panels.extend(p.get("panels", []) or [])
    for p in panels:
        pw = f"{where} panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            fail(pw, "duplicate panel id")
        ids.add(p.get("id"))
        gp = p.get("gridPos") or {}
        if not all(isinstance(gp.get(k), int) for k in ("h", "w", "x", "y")) or gp["x"] + gp["w"] > 24:
            fail(pw, f"bad gridPos {gp}")
        if p.get("type") == "row":
            continue
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            fail(pw, "panel datasource must be ${datasource}")
        targets = p.get("targets") or []
        if not targets:
            fail(pw, "no queries")
        for t in targets:
            tw = f"{pw} query {t.get('refId')}"
            if (t.get("datasource") or {}).get("uid") not in (None, "${datasource}"):
                fail(tw, "query datasource must be ${datasource}")
            expr = t.get("expr", "")
            check_promql(tw, expr, series)
            concrete = (expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
                        .replace("$__range", "1h"))
            concrete = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", ".*", concrete)
            rules.append({"record": f"dashboard:panel_{p.get('id')}_{t.get('refId')}", "expr": concrete})
    for v in variables.values():
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query":
            m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)", q or "")
            if not m:
                fail(f"{where} variable {v.get('name')}", f"unexpected query {q!r}")
            else:
                check_promql(f"{where} variable {v.get('name')}", m.group(1), series)
    (out / "dashboard.rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))


def main() -> int:
    rendered, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    alert_series = exported_series() | ALERT_ONLY_SERIES
    rule_docs = []
    for path in sorted(rendered.glob("*.yaml")):
        if path.name.endswith(".core.yaml"):
            continue
        name = path.stem
        try:
            docs = load_docs(path)
        except yaml.YAMLError as e:
            fail(name, f"rendered YAML does not parse: {e}")
            continue
        core, crds = [], []
        for d in docs:
            (crds if str(d.get("apiVersion", "")).startswith("monitoring.coreos.com/") else core).append(d)
        (rendered / f"{name}.core.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
        for d in crds:
            where = f"{name}: {ident(d)}"
            if d.get("apiVersion") != "monitoring.coreos.com/v1":
                fail(where, f"apiVersion {d.get('apiVersion')} (want monitoring.coreos.com/v1)")
            if not (d.get("metadata") or {}).get("name"):
                fail(where, "metadata.name is required")
            if d.get("kind") == "ServiceMonitor":
                check_servicemonitor(where, d)
            elif d.get("kind") == "PrometheusRule":
                check_prometheusrule(where, d, alert_series)
                rule_docs.append(d)
            else:
                fail(where, "unexpected prometheus-operator kind")
        print(f"    {name}: {len(core)} core resources, {len(crds)} prometheus-operator resources "
              f"({', '.join(sorted({d['kind'] for d in crds})) or 'none'})")
        check_render(name, docs)

    if not rule_docs:
        fail("monitoring", "no PrometheusRule was rendered")
    else:
        spec = rule_docs[0]["spec"]
        (out / "s3x-proxy.rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        stripped = json.loads(json.dumps(spec))
        for g in stripped["groups"]:
            for r in g["rules"]:
                r.pop("annotations", None)
        (out / "s3x-proxy.test-rules.yaml").write_text(yaml.safe_dump(stripped, sort_keys=False))
    check_dashboard(out)

    for f in FAILURES:
        print(f"    ERROR {f}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
