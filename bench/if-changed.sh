#!/usr/bin/env bash
# A no-op `build-image --if-changed` against `docker build` with every layer cached, on a
# project whose image copies a ~200 MB context of real files (from /usr/lib).
#   bash bench/if-changed.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
work=$(mktemp -d /var/tmp/du-bench-ifchanged-XXXXXX)
proj=$work/benchproj
trap 'docker rmi -f benchproj-app:bench benchproj-app:plain >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$proj/docker/app" "$proj/files" "$work/bin"
install_commands "$work/bin"
export PATH=$work/bin:$PATH USER=bench LOGNAME=bench
python3 - "$proj/files" <<'PY'
import os, shutil, sys
dest, total = sys.argv[1], 0
for root, _, files in os.walk("/usr/lib/x86_64-linux-gnu"):
    for f in sorted(files):
        src = os.path.join(root, f)
        if os.path.islink(src) or not os.path.isfile(src):
            continue
        shutil.copyfile(src, os.path.join(dest, f"{total}-{f}"))
        total += os.path.getsize(src)
        if total >= 200_000_000:
            sys.exit(0)
PY
cp /bin/busybox "$proj/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY files/ /files/\n' > "$proj/docker/app/Dockerfile"
cd "$proj"
echo "context: $(du -sh files | cut -f1)"
build-image app --if-changed >/dev/null 2>&1
hyperfine --warmup 1 --runs 10 \
  --export-json "$repo/target/bench/if-changed.json" --export-markdown "$repo/target/bench/if-changed.md" \
  -n "build-image --if-changed (no-op)" "build-image app --if-changed" \
  -n "docker build (all cached)" "docker build -q -t benchproj-app:plain -f docker/app/Dockerfile ."
python3 - "$repo/target/bench/if-changed.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
ours, docker = r["build-image --if-changed (no-op)"], r["docker build (all cached)"]
print(f"no-op --if-changed {ours*1e3:.0f} ms, cached docker build {docker*1e3:.0f} ms: {100*ours/docker:.1f}% (target <= 5%)")
PY
