#!/usr/bin/env bash
# Startup benchmark (run by hand; results go in BENCHMARKS.md): the time build-image and
# run-image take with a fake `docker` that exits at once, side by side in one hyperfine
# run with dockerutils 2.0.7 and with the floor, `sh -c docker` (one process that only
# starts the same fake docker).
#   bash bench/startup.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
venv=$repo/target/oracle-venv
[ -x "$venv/bin/build-image" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q dockerutils==2.0.7; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fake" "$work/ours" "$work/benchproj/docker/dev"
printf '#!/bin/sh\nexit 0\n' > "$work/fake/docker"
chmod +x "$work/fake/docker"
install_commands "$work/ours" build-image run-image
printf 'FROM scratch\n' > "$work/benchproj/docker/dev/Dockerfile"
cat > "$work/benchproj/docker/dockerutils.cfg" <<'CFG'
[dev]
volumes=-v {project_root}:/home/app/project -v {home}/.aws:/home/app/.aws:ro
ports=-p 127.0.0.1:8888:8888
env=dev_env
cmd=pytest -x
build_args=--build-arg VERSION=1.0

[dev_env]
LOG_LEVEL=debug
CFG
cd "$work/benchproj"
export PATH=$work/fake:$PATH
out=$repo/target/bench
mkdir -p "$out"
hyperfine -N --warmup 20 --runs 300 \
  --export-json "$out/startup.json" --export-markdown "$out/startup.md" \
  -n floor 'sh -c docker' \
  -n 'ours build-image' "$work/ours/build-image dev" \
  -n '2.0.7 build-image' "$venv/bin/build-image dev" \
  -n 'ours run-image' "$work/ours/run-image dev" \
  -n '2.0.7 run-image' "$venv/bin/run-image dev"
python3 - "$out/startup.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
floor = r["floor"]
for c in ("build-image", "run-image"):
    ours, orig = r[f"ours {c}"], r[f"2.0.7 {c}"]
    print(f"{c}: ours {ours*1e3:.2f} ms = {ours/floor:.2f}x floor (target <= 1.5); "
          f"2.0.7 {orig*1e3:.1f} ms = {orig/ours:.1f}x ours (target >= 5)")
PY
