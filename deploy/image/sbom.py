#!/usr/bin/env python3
"""Turns cargo-cyclonedx's SBOM of the s3x-proxy binary into the SBOM of the image
(CycloneDX 1.5 JSON), standard library only. Run by deploy/image.sh.

    sbom.py CRATES_BOM CARGO_TREE ARCHIVE ROOTFS OUT

CRATES_BOM  cargo-cyclonedx's s3x-proxy_bin.cdx.json (--describe binaries --no-build-deps)
CARGO_TREE  `cargo tree -e normal --target ... --prefix none -f '{p}'` of the same binary
ARCHIVE     the OCI archive (its manifest digest names the image)
ROOTFS      the tree that went into the image (for file hashes)

What it changes:
* metadata.component becomes the container image (pkg:oci/s3x-proxy@sha256:...); the binary,
  cargo-cyclonedx's root component, becomes a component of it with the binary's SHA-256.
* Crates that cargo-cyclonedx lists but the build never compiled are dropped. It reads
  `cargo metadata`, whose resolve keeps some optional dependencies of disabled features (ring via
  rustls-webpki, for one); `cargo tree` applies cargo's feature resolver, so it is the list of
  what was built. The dropped names go into a metadata property.
* Components cargo does not know about are added: the Rust standard library, glibc (libc.a from
  libc6-dev) and libgcc (libgcc-12-dev), which the static link puts into the binary, and the
  Debian ca-certificates bundle at /etc/ssl/certs/ca-certificates.crt. Their versions come from
  rustc and dpkg on the build machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

BINARY = "usr/local/bin/s3x-proxy"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def deb(package_path: str, license_expr: str, description: str) -> dict:
    """The Debian package owning package_path, as a CycloneDX component."""
    owner = sh("dpkg-query", "-S", package_path).split(":")[0]
    version = sh("dpkg-query", "-W", "-f=${Version}", owner)
    arch = sh("dpkg-query", "-W", "-f=${Architecture}", owner)
    distro = "debian-" + Path("/etc/debian_version").read_text().strip().split(".")[0]
    purl = f"pkg:deb/debian/{owner}@{version}?arch={arch}&distro={distro}"
    return {
        "type": "library",
        "bom-ref": purl,
        "name": owner,
        "version": version,
        "description": description,
        "licenses": [{"expression": license_expr}],
        "purl": purl,
    }


def main() -> int:
    crates_bom, tree_file, archive, rootfs, out = sys.argv[1:6]
    bom = json.loads(Path(crates_bom).read_text())
    root = Path(rootfs)

    # What cargo really built: name@version of every package in the normal dependency tree.
    built = set()
    for line in Path(tree_file).read_text().split("\n"):
        m = re.match(r"^(\S+) v(\S+)", line.strip())
        if m:
            built.add(f"{m.group(1)}@{m.group(2)}")
    dropped = sorted(f"{c['name']}@{c['version']}" for c in bom["components"]
                     if f"{c['name']}@{c['version']}" not in built)
    keep_refs = {c["bom-ref"] for c in bom["components"]
                 if f"{c['name']}@{c['version']}" in built}
    bom["components"] = [c for c in bom["components"] if c["bom-ref"] in keep_refs]

    # The image's identity: the manifest digest in the archive's index.
    with tarfile.open(archive) as t:
        f = t.extractfile("index.json")
        assert f is not None
        index = json.loads(f.read())
    entry = index["manifests"][0]
    digest = entry["digest"]
    tag = entry.get("annotations", {}).get("org.opencontainers.image.ref.name", "s3x-proxy")
    name, _, version = tag.partition(":")

    # The binary: cargo-cyclonedx's root component, with a stable bom-ref and its hash.
    app = bom["metadata"]["component"]
    old_ref = app["bom-ref"]
    app_ref = f"pkg:cargo/{app['name']}@{app['version']}"
    app["bom-ref"] = app_ref
    app["hashes"] = [{"alg": "SHA-256", "content": sha256(root / BINARY)}]
    app.setdefault("properties", []).append({"name": "s3x:image:path", "value": "/" + BINARY})
    for dep in bom["dependencies"]:
        if dep["ref"] == old_ref:
            dep["ref"] = app_ref
        dep["dependsOn"] = [d for d in dep.get("dependsOn", [])
                            if d in keep_refs or d == old_ref]
    bom["dependencies"] = [d for d in bom["dependencies"]
                           if d["ref"] == app_ref or d["ref"] in keep_refs]

    # Linked in statically, or shipped beside the binary.
    rustc = re.search(r"release: (\S+)", sh("rustc", "-vV"))
    rust_version = rustc.group(1) if rustc else "unknown"
    rust_std = {
        "type": "library",
        "bom-ref": f"pkg:generic/rust-std@{rust_version}",
        "name": "rust-std",
        "version": rust_version,
        "description": "Rust standard library (linked statically)",
        "licenses": [{"expression": "MIT OR Apache-2.0"}],
        "purl": f"pkg:generic/rust-std@{rust_version}",
    }
    libgcc = sh("gcc", "-print-libgcc-file-name")
    static = [
        rust_std,
        deb("/usr/lib/x86_64-linux-gnu/libc.a", "LGPL-2.1-or-later",
            "GNU C library (libc.a, linked statically: static-pie with crt-static)"),
        deb(libgcc, "GPL-3.0-or-later WITH GCC-exception-3.1",
            "GCC runtime library (libgcc.a, libgcc_eh.a, linked statically)"),
    ]
    certs = deb("/usr/share/ca-certificates", "MPL-2.0",
                "Mozilla CA roots as /etc/ssl/certs/ca-certificates.crt")
    certs["hashes"] = [{"alg": "SHA-256", "content": sha256(root / CA_BUNDLE)}]
    certs["properties"] = [{"name": "s3x:image:path", "value": "/" + CA_BUNDLE}]
    app["scope"] = "required"
    bom["components"] = [app] + static + [certs] + bom["components"]
    for dep in bom["dependencies"]:
        if dep["ref"] == app_ref:
            dep["dependsOn"] = sorted(set(dep["dependsOn"]) | {c["bom-ref"] for c in static})
    image_ref = f"pkg:oci/{name}@{digest.replace(':', '%3A')}?tag={version}"
    bom["dependencies"] = [
        {"ref": image_ref, "dependsOn": [app_ref, certs["bom-ref"]]},
        *bom["dependencies"],
        *({"ref": c["bom-ref"], "dependsOn": []} for c in static + [certs]),
    ]

    meta = bom["metadata"]
    meta["component"] = {
        "type": "container",
        "bom-ref": image_ref,
        "name": name,
        "version": version,
        "description": "s3x-proxy container image, built FROM scratch by deploy/image.sh",
        "licenses": [{"expression": "Apache-2.0"}],
        "purl": image_ref,
        "hashes": [{"alg": "SHA-256", "content": digest.split(":", 1)[1]}],
    }
    meta.setdefault("properties", []).extend([
        {"name": "s3x:oci:manifest-digest", "value": digest},
        {"name": "s3x:cargo-cyclonedx:dropped-not-built", "value": " ".join(dropped) or "none"},
    ])
    bom["serialNumber"] = "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, image_ref))
    Path(out).write_text(json.dumps(bom, indent=2) + "\n")
    crates = sum(1 for c in bom["components"] if c.get("purl", "").startswith("pkg:cargo/"))
    print(f"    {crates} crates (the binary and {crates - 1} dependencies), "
          f"{len(static)} statically linked runtimes, 1 CA bundle; "
          f"dropped as not built: {', '.join(dropped) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
