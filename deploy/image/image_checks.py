#!/usr/bin/env python3
"""Checks of the s3x-proxy image against deploy/image/config.json (the one definition of its
runtime configuration and file tree).

    image_checks.py config ARCHIVE          the built image's OCI config (user, entrypoint, cmd,
                                            workdir, ports, env, stop signal, labels)
    image_checks.py tree ROOTFS             the image's files: exactly the listed paths, types,
                                            modes and owners; no shell anywhere
    image_checks.py dockerfile DOCKERFILE   deploy/Dockerfile declares the same configuration
    image_checks.py manifests RENDERED_DIR [ARCHIVE]
                                            every s3x-proxy container in the rendered Kubernetes
                                            manifests uses the image's entrypoint (no command),
                                            user, ports and CA directory; with ARCHIVE, the built
                                            image's own config is the reference instead

`config` and `tree` need only the standard library (the smoke test runs them with the system
python3); `manifests` needs PyYAML (deploy/validate.sh runs it in its venv).
Prints one line per problem and exits 1 if there was any.
"""

from __future__ import annotations

import json
import shlex
import stat
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPECTED = json.loads((HERE / "config.json").read_text())
PROXY_CONTAINER = "s3x-proxy"
SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox", "toybox"}

FAILURES: list[str] = []


def fail(msg: str) -> None:
    FAILURES.append(msg)


# --- The built image ---------------------------------------------------------------------------
def archive_config(archive: str) -> dict:
    """The OCI image config ("config" member of the config blob) of the archive's only image."""
    with tarfile.open(archive) as t:
        def blob(digest: str) -> bytes:
            member = t.extractfile("blobs/" + digest.replace(":", "/"))
            assert member is not None
            return member.read()
        index_file = t.extractfile("index.json")
        assert index_file is not None
        index = json.loads(index_file.read())
        manifests = index.get("manifests", [])
        if len(manifests) != 1:
            raise SystemExit(f"{archive}: expected one image, found {len(manifests)}")
        manifest = json.loads(blob(manifests[0]["digest"]))
        image = json.loads(blob(manifest["config"]["digest"]))
    if image.get("os") != "linux" or image.get("architecture") != "amd64":
        fail(f"platform is {image.get('os')}/{image.get('architecture')}, want linux/amd64")
    return image.get("config", {})


def env_dict(env: list[str]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in env)


def check_config(cfg: dict, where: str) -> None:
    want = EXPECTED
    checks = [
        ("User", cfg.get("User"), want["user"]),
        ("Entrypoint", cfg.get("Entrypoint"), want["entrypoint"]),
        ("Cmd", cfg.get("Cmd") or [], want["cmd"]),
        ("WorkingDir", cfg.get("WorkingDir") or "/", want["workdir"]),
        ("ExposedPorts", sorted(cfg.get("ExposedPorts") or {}), sorted(want["exposed_ports"])),
        ("Env", env_dict(cfg.get("Env") or []), want["env"]),
        ("StopSignal", cfg.get("StopSignal") or "SIGTERM", want["stop_signal"]),
    ]
    for name, have, expected in checks:
        if have != expected:
            fail(f"{where}: {name} is {have!r}, want {expected!r}")
    labels = cfg.get("Labels") or {}
    for k, v in want["labels"].items():
        if labels.get(k) != v:
            fail(f"{where}: label {k} is {labels.get(k)!r}, want {v!r}")
    if not str(cfg.get("User", "")).split(":")[0].isdigit():
        fail(f"{where}: User must be numeric, or runAsNonRoot cannot verify it")


# --- The file tree -----------------------------------------------------------------------------
def check_tree(rootfs: str) -> None:
    root = Path(rootfs)
    want = {k: v for k, v in EXPECTED["files"].items() if k.startswith("/")}
    have: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        kind = "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else \
            "l" if stat.S_ISLNK(st.st_mode) else "?"
        have["/" + str(p.relative_to(root))] = f"{kind} {stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}"
        if p.name in SHELLS:
            fail(f"tree: {p.relative_to(root)} looks like a shell")
    for path in sorted(set(want) | set(have)):
        if path not in have:
            fail(f"tree: {path} is missing (want {want[path]})")
        elif path not in want:
            fail(f"tree: unexpected {path} ({have[path]})")
        elif have[path] != want[path]:
            fail(f"tree: {path} is {have[path]}, want {want[path]}")
    if not FAILURES:
        print(f"    tree: {len(have)} paths, exactly as in deploy/image/config.json; no shell")


# --- deploy/Dockerfile -------------------------------------------------------------------------
def dockerfile_runtime_stage(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage, continuation lines joined."""
    lines, buf = [], ""
    for raw in Path(path).read_text().splitlines():
        s = raw.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        buf += " " + s.rstrip("\\").strip() if buf else s.rstrip("\\").strip()
        if not s.endswith("\\"):
            lines.append(buf)
            buf = ""
    stage: list[tuple[str, str]] = []
    for line in lines:
        instr, _, rest = line.partition(" ")
        if instr.upper() == "FROM":
            stage = []
        stage.append((instr.upper(), rest.strip()))
    return stage


def check_dockerfile(path: str) -> None:
    stage = dockerfile_runtime_stage(path)
    if not stage or stage[0] != ("FROM", "scratch"):
        fail(f"{path}: the runtime stage must be FROM scratch (like deploy/image.sh), got {stage[:1]}")
    env: dict[str, str] = {}
    cfg: dict = {"Cmd": [], "ExposedPorts": {}}
    for instr, rest in stage:
        if instr == "ENV":
            for word in shlex.split(rest):
                k, _, v = word.partition("=")
                env[k] = v
        elif instr == "USER":
            cfg["User"] = rest
        elif instr == "EXPOSE":
            for p in rest.split():
                cfg["ExposedPorts"][p if "/" in p else p + "/tcp"] = {}
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = json.loads(rest)
        elif instr == "CMD":
            cfg["Cmd"] = json.loads(rest)
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = rest
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = rest
        elif instr == "LABEL":
            cfg.setdefault("Labels", {}).update(
                dict(w.partition("=")[::2] for w in shlex.split(rest)))
    cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
    check_config(cfg, path)


# --- Kubernetes manifests ----------------------------------------------------------------------
def check_manifests(rendered: str, archive: str | None) -> None:
    import yaml  # only here: `config` and `tree` run without PyYAML

    if archive:
        cfg = archive_config(archive)
        check_config(cfg, archive)
        source = "the built image"
    else:
        cfg = {"User": EXPECTED["user"], "Entrypoint": EXPECTED["entrypoint"],
               "ExposedPorts": {p: {} for p in EXPECTED["exposed_ports"]},
               "Env": [f"{k}={v}" for k, v in EXPECTED["env"].items()]}
        source = "deploy/image/config.json"
    uid, _, gid = cfg["User"].partition(":")
    ports = {int(p.split("/")[0]) for p in cfg.get("ExposedPorts") or {}}
    image_env = env_dict(cfg.get("Env") or [])
    seen = 0
    for path in sorted(Path(rendered).glob("*.yaml")):
        if path.name.endswith(".core.yaml"):
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet", "Pod"):
                continue
            pod = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
            psc = pod.get("securityContext") or {}
            for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
                if c["name"] != PROXY_CONTAINER:
                    continue
                seen += 1
                where = f"{path.stem}: {doc['kind']}/{doc['metadata']['name']} container {c['name']}"
                csc = c.get("securityContext") or {}
                if "command" in c and c["command"] != cfg["Entrypoint"]:
                    fail(f"{where}: command {c['command']} replaces the image's entrypoint {cfg['Entrypoint']}")
                for key, want in (("runAsUser", uid), ("runAsGroup", gid)):
                    have = csc.get(key, psc.get(key))
                    if have is not None and str(have) != want:
                        fail(f"{where}: {key} {have} is not the image's user {cfg['User']}")
                for p in c.get("ports") or []:
                    if p["containerPort"] not in ports:
                        fail(f"{where}: containerPort {p['containerPort']} is not exposed by the image ({sorted(ports)})")
                env = {e["name"]: e.get("value") for e in c.get("env") or []}
                merged = dict(image_env, **{k: v for k, v in env.items() if v is not None})
                for var in ("S3X_PROXY_LISTEN", "S3X_PROXY_ADMIN_LISTEN"):
                    port = int(merged.get(var, ":0").rpartition(":")[2])
                    if port not in ports:
                        fail(f"{where}: {var}={merged.get(var)} listens on a port the image does not expose")
                ca = merged.get("S3X_PROXY_CA_DIR")
                if ca != EXPECTED["ca_dir"]:
                    fail(f"{where}: S3X_PROXY_CA_DIR={ca}, but the image's CA directory is {EXPECTED['ca_dir']}")
                if ca not in {m["mountPath"] for m in c.get("volumeMounts") or []}:
                    fail(f"{where}: nothing is mounted at the CA directory {ca} (the root filesystem is read-only)")
                vols = {v["name"]: v for v in pod.get("volumes") or []}
                for m in c.get("volumeMounts") or []:
                    if m["mountPath"] == ca and "emptyDir" in vols.get(m["name"], {}):
                        if str(psc.get("fsGroup")) != gid:
                            fail(f"{where}: the CA emptyDir needs fsGroup {gid} to be writable by the image's user")
    if not seen:
        fail(f"{rendered}: no {PROXY_CONTAINER} container found")
    elif not FAILURES:
        print(f"    {seen} s3x-proxy containers use the entrypoint, user {cfg['User']}, ports "
              f"{sorted(ports)} and CA directory of {source}")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "config":
        check_config(archive_config(args[0]), args[0])
        if not FAILURES:
            print(f"    config: user {EXPECTED['user']}, entrypoint {EXPECTED['entrypoint']}, ports "
                  f"{EXPECTED['exposed_ports']}, env and labels as in deploy/image/config.json")
    elif cmd == "tree":
        check_tree(args[0])
    elif cmd == "dockerfile":
        check_dockerfile(args[0])
        if not FAILURES:
            print(f"    {args[0]}: FROM scratch, same user, entrypoint, ports, env, stop signal")
    elif cmd == "manifests":
        check_manifests(args[0], args[1] if len(args) > 1 else None)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for f in FAILURES:
        print(f"    ERROR {f}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
