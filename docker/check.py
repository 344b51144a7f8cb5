#!/usr/bin/env python3
"""Checks the Dockerfiles without a container engine (k8s/check.sh runs it):

  - every stage's base is an earlier stage, Debian 12 (debian:bookworm), or a target of
    docker/Dockerfile (for images built on ours, examples/chat/Dockerfile);
  - every COPY from the build context names files that exist and that .dockerignore keeps,
    and a `COPY . X` leaves out every build directory (a copied CMakeCache.txt breaks cmake);
  - the build stage runs scripts/setup.sh and scripts/build.sh, the path CI tests;
  - every COPY --from=build names a file `cmake --install` of this build produces (the
    build is installed into a scratch prefix laid out as the Dockerfile's);
  - the runtime stage installs only existing Debian packages and no -dev package, and the
    libraries `ldd` lists for each binary the images run (gateway, demo worker, the chat
    example when built) belong to those packages, their dependencies, or the base image;
  - the runtime user is numeric and non-root and is the manifests' runAsUser, and each
    image's ENTRYPOINT is the command k8s/base gives its container.
Exit 1 on any failure.
"""

import argparse
import fnmatch
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = {REPO / "docker" / "Dockerfile": REPO,
               REPO / "examples" / "chat" / "Dockerfile": REPO / "examples" / "chat"}
# Image (as k8s/base names it) → its target in docker/Dockerfile and the binary in the build.
IMAGES = {"sluice/gateway": ("gateway", "gateway/sluice-gateway"),
          "sluice/demo-worker": ("demo-worker", "demo/sluice-demo-worker")}
# What the worker-runtime image must run: the demo worker, and a user's worker (the example,
# when scripts/example.sh built it).
WORKER_BINARIES = ["demo/sluice-demo-worker", "example/build/chat-worker"]

failures = []


def fail(what):
    failures.append(what)
    print(f"FAIL docker: {what}", flush=True)


def ok(what):
    print(f"ok   docker: {what}", flush=True)


def parse(path):
    """[(stage name, base, [(instruction, text)])] with ARG defaults applied to FROM."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args, stages = {}, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif word == "FROM":
            rest = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest)
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None
            stages.append((name, parts[0], []))
        elif stages:
            stages[-1][2].append((word, rest.strip()))
    return stages


def dockerignore(context):
    path = context / ".dockerignore"
    if not path.exists():
        return []
    return [l.strip() for l in path.read_text().splitlines()
            if l.strip() and not l.startswith("#")]


def ignored(relative, patterns):
    out = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        p = pattern.lstrip("!").rstrip("/")
        candidates = [relative] + [str(Path(*Path(relative).parts[:i]))
                                   for i in range(1, len(Path(relative).parts))]
        hit = any(fnmatch.fnmatchcase(c, p) or
                  (p.startswith("**/") and fnmatch.fnmatchcase(Path(c).name, p[3:]))
                  for c in candidates)
        if hit:
            out = not negate
    return out


def copy_args(text):
    words = shlex.split(text)
    options = {w.split("=", 1)[0]: w.split("=", 1)[1] if "=" in w else "" for w in words
               if w.startswith("--")}
    paths = [w for w in words if not w.startswith("--")]
    return options, paths[:-1], paths[-1]


def apt_packages(run_text):
    m = re.search(r"apt-get install ([^&;]*)", run_text)
    if not m:
        return []
    return [w for w in m.group(1).split() if not w.startswith("-")]


def apt(*args):
    return subprocess.run(["apt-cache", *args], capture_output=True, text=True).stdout


def closure(packages):
    out = apt("depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
              "--no-breaks", "--no-replaces", "--no-enhances", "--important", *packages)
    return {l.strip() for l in out.splitlines() if l and not l.startswith(" ")} | set(packages)


def owners(binary):
    """Debian packages owning the libraries ldd resolves for binary; unresolved names."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    packages, missing = set(), []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if not m:
            continue
        if m.group(2) == "not":
            missing.append(m.group(1))
            continue
        for candidate in (m.group(2), "/usr" + m.group(2)):
            res = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if res.returncode == 0:
                packages.add(res.stdout.split(":")[0])
                break
        else:
            missing.append(m.group(2))
    return packages, missing


def check_dockerfile(path, context, build, install_root, targets):
    stages = parse(path)
    names = [s[0] for s in stages]
    where = path.relative_to(REPO)
    patterns = dockerignore(context)
    for i, (name, base, steps) in enumerate(stages):
        label = f"{where} stage {name or i}"
        if base in names[:i]:
            pass
        elif re.fullmatch(r"debian:bookworm(-slim)?", base):
            pass
        elif base.split(":")[0] in {f"sluice/worker-{t}" for t in ("sdk", "runtime")}:
            target = base.split(":")[0].split("/")[1]
            if target not in targets:
                fail(f"{label}: FROM {base}: docker/Dockerfile has no target {target}")
        else:
            fail(f"{label}: FROM {base} is neither an earlier stage nor Debian 12")
        for word, text in steps:
            if word not in ("COPY", "ADD"):
                continue
            options, sources, dest = copy_args(text)
            if "--from" in options:
                origin = options["--from"]
                if origin not in names[:i]:
                    fail(f"{label}: COPY --from={origin}: no such earlier stage")
                elif origin == "build" and install_root is not None:
                    for source in sources:
                        if not (install_root / source.lstrip("/")).exists():
                            fail(f"{label}: COPY --from=build {source}: `cmake --install` "
                                 "does not produce it")
                continue
            for source in sources:
                matches = list(context.glob(source)) if source != "." else [context]
                if not matches:
                    fail(f"{label}: COPY {source}: not in the build context {context}")
                for m in matches:
                    rel = str(m.relative_to(context)) if m != context else "."
                    if rel != "." and ignored(rel, patterns):
                        fail(f"{label}: COPY {source}: excluded by .dockerignore")
                if source == ".":
                    for d in context.iterdir():
                        if d.is_dir() and (d / "CMakeCache.txt").exists() and \
                                not ignored(d.name, patterns):
                            fail(f"{label}: COPY . copies the build directory {d.name} "
                                 "(add it to .dockerignore)")
    ok(f"{where}: {len(stages)} stages, bases and copied files exist")
    return stages


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", type=Path, required=True)
    args = parser.parse_args()
    build = args.build.resolve()

    main_file = REPO / "docker" / "Dockerfile"
    main_stages = parse(main_file)
    targets = {s[0] for s in main_stages if s[0]}
    stage = {s[0]: s for s in main_stages}

    # The build stage: the project's scripts, then cmake --install into a prefix.
    build_text = " ".join(t for w, t in stage["build"][2] if w == "RUN")
    for script in ("scripts/setup.sh", "scripts/build.sh"):
        if script not in build_text:
            fail(f"the build stage does not run {script}")
    m = re.search(r"cmake --install \S+ --prefix (\S+)", build_text)
    install_root = None
    if not m:
        fail("the build stage does not `cmake --install ... --prefix DIR`")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="sluice-docker-check-")
        install_root = Path(tmp.name)
        res = subprocess.run(["cmake", "--install", str(build), "--prefix",
                              str(install_root / m.group(1).lstrip("/"))],
                             capture_output=True, text=True)
        if res.returncode != 0:
            fail(f"cmake --install {build} failed: {res.stderr.strip()[-400:]}")
            install_root = None
        sdk = install_root / m.group(1).lstrip("/") / "lib/cmake/sluice/sluice-config.cmake"
        if install_root is not None and not sdk.exists():
            fail("the installed SDK has no sluice-config.cmake: find_package(sluice) would fail")

    for path, context in DOCKERFILES.items():
        # Only docker/Dockerfile's build stage is this build installed; others build their own.
        check_dockerfile(path, context, build, install_root if path == main_file else None,
                         targets)

    # The runtime stage: packages that exist, no -dev, covering every library.
    runtime_text = " ".join(t for w, t in stage["runtime"][2] if w == "RUN")
    listed = apt_packages(runtime_text)
    if not apt("policy", "libc6").strip() or "Candidate: (none)" in apt("policy", "libc6"):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
    for package in listed:
        if package.endswith("-dev"):
            fail(f"runtime stage installs the build package {package}")
        if "Candidate: (none)" in apt("policy", package) or not apt("policy", package).strip():
            fail(f"runtime stage installs {package}, which Debian does not have")
    have = closure(listed)
    # debian:bookworm is debootstrap's minbase (Priority: required) plus apt.
    base = closure(["apt"])
    binaries = sorted({build / b for _, b in IMAGES.values()} |
                      {build / b for b in WORKER_BINARIES if (build / b).exists()})
    for binary in binaries:
        packages, missing = owners(binary)
        for lib in missing:
            fail(f"{binary.name}: {lib} belongs to no Debian package")
        for package in sorted(packages - have - base):
            priority = re.search(r"^Priority: (\S+)", apt("show", package), re.M)
            if not priority or priority.group(1) != "required":
                fail(f"{binary.name} links a library of {package}, which the runtime stage "
                     "does not install")
        if not missing and packages <= have | base:
            ok(f"{binary.name}: its {len(packages)} library packages are in the runtime image")

    # User, entrypoints, and the manifests.
    user = next((t for w, t in stage["runtime"][2] if w == "USER"), "")
    uid = user.split(":")[0]
    if not uid.isdigit() or uid == "0":
        fail(f"runtime USER {user!r} is not a numeric non-root user")
    manifests = {}
    for f in (REPO / "k8s" / "base").glob("*-deployment.yaml"):
        doc = yaml.safe_load(f.read_text())
        pod = doc["spec"]["template"]["spec"]
        for c in pod["containers"]:
            manifests[c["image"].split(":")[0]] = (c, pod.get("securityContext") or {})
    for image, (target, binary) in IMAGES.items():
        if image not in manifests:
            fail(f"k8s/base runs no container of image {image}")
            continue
        c, sc = manifests[image]
        entry = next((t for w, t in stage[target][2] if w == "ENTRYPOINT"), "[]")
        entry = yaml.safe_load(entry)
        if c.get("command") != entry:
            fail(f"{image}: k8s command {c.get('command')} is not the image's ENTRYPOINT {entry}")
        if str(sc.get("runAsUser")) != uid:
            fail(f"{image}: k8s runAsUser {sc.get('runAsUser')} is not the image's USER {uid}")
        copied = [copy_args(t)[2] for w, t in stage[target][2] if w == "COPY"]
        if entry and entry[0] not in copied:
            fail(f"{image}: ENTRYPOINT {entry[0]} is not a file the stage copies in")
    if not failures:
        ok(f"USER {uid}, entrypoints and the manifests' commands agree")
    print("docker: all checks passed" if not failures else f"docker: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
