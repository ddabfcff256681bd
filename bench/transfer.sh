#!/usr/bin/env bash
# transfer-image against 2.0.7's pipe (`docker save | gzip | ssh HOST 'gunzip | docker load'`)
# and against the floor (`docker load` on the remote reading the saved archive from a local
# file), on a ~200 MB image of real files (from /usr/lib), over loopback to the test dock of
# tests/dock-env.sh; ours both ways (layers read from the engine's storage, the default
# as root, and --docker-save). Then the bytes on the wire after a change to one small top
# layer.
#   bash bench/transfer.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
eval "$(bash tests/dock-env.sh start)"
work=$(mktemp -d /var/tmp/du-bench-XXXXXX)
chmod 755 "$work"
image=du-bench-transfer:1
first_id=""
cleanup() {
  DOCKER_HOST=$DOCKERUTILS_TEST_DOCK_ENGINE docker rmi -f "$image" >/dev/null 2>&1 || true
  DOCKER_HOST=$DOCKERUTILS_TEST_DOCK_ENGINE docker image prune -f >/dev/null 2>&1 || true
  # Both versions locally: the first, untagged by the rebuild, would otherwise stay.
  docker rmi -f "$image" $first_id >/dev/null 2>&1 || true
  bash "$repo/tests/dock-env.sh" stop
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin" "$work/home" "$work/ctx/files"
install_commands "$work/bin"
export HOME=$work/home PATH=$work/bin:$PATH
register-dock "$DOCKERUTILS_TEST_DOCK_IP" benchdock -u "$DOCKERUTILS_TEST_DOCK_USER" >/dev/null
dock=$DOCKERUTILS_TEST_DOCK_USER@$DOCKERUTILS_TEST_DOCK_IP
ssh_opts="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=error"

# ~200 MB of real files, in 4 layers, and a small top layer.
python3 - "$work/ctx/files" <<'PY'
import os, shutil, sys
dest, total, limit, n = sys.argv[1], 0, 200_000_000, 0
for root, _, files in os.walk("/usr/lib/x86_64-linux-gnu"):
    for f in sorted(files):
        src = os.path.join(root, f)
        if os.path.islink(src) or not os.path.isfile(src):
            continue
        part = os.path.join(dest, str(n % 4))
        n += 1
        os.makedirs(part, exist_ok=True)
        shutil.copyfile(src, os.path.join(part, f"{total}-{f}"))
        total += os.path.getsize(src)
        if total >= limit:
            sys.exit(0)
PY
# A stamp in each layer: no layer of an earlier run (or any other image) is reused, on
# either engine, so the first transfer really sends everything.
for n in 0 1 2 3; do date +%s%N > "$work/ctx/files/$n/.stamp"; done
printf 'one\n' > "$work/ctx/top.txt"
cat > "$work/ctx/Dockerfile" <<'DF'
FROM scratch
COPY files/0 /files/0
COPY files/1 /files/1
COPY files/2 /files/2
COPY files/3 /files/3
COPY top.txt /top.txt
DF
docker build -q -t "$image" "$work/ctx" >/dev/null
first_id=$(docker image inspect --format '{{.Id}}' "$image")
echo "image: $(docker image inspect --format '{{.Size}}' "$image") bytes"
# The floor's archive, where the remote user can read it.
docker save "$image" > "$work/image.tar"
chmod 644 "$work/image.tar"

# Before each run the dock forgets the image and every dangling image: an untagged image
# left by an earlier run (the test dock's data persists) would still hold the layers, and
# "first transfer" would send only the configuration.
remove_remote="DOCKER_HOST=$DOCKERUTILS_TEST_DOCK_ENGINE docker rmi -f $image >/dev/null 2>&1; DOCKER_HOST=$DOCKERUTILS_TEST_DOCK_ENGINE docker image prune -f >/dev/null 2>&1; true"
hyperfine --runs 3 --prepare "$remove_remote" \
  --export-json "$repo/target/bench/transfer.json" --export-markdown "$repo/target/bench/transfer.md" \
  -n '2.0.7 pipe (save | gzip | ssh gunzip | load)' "docker save $image | gzip | ssh $ssh_opts $dock 'gunzip | docker load'" \
  -n 'transfer-image (first)' "transfer-image $image benchdock" \
  -n 'transfer-image --docker-save (first)' "transfer-image --docker-save $image benchdock" \
  -n 'floor: docker load -i on the remote' "ssh $ssh_opts $dock 'docker load -i $work/image.tar'"

# Bytes on the wire: the original's full transfer against ours after a one-layer change.
original_bytes=$(docker save "$image" | gzip | wc -c)
transfer-image "$image" benchdock >/dev/null 2>&1
printf 'two\n' > "$work/ctx/top.txt"
docker build -q -t "$image" "$work/ctx" >/dev/null
ours=$(transfer-image "$image" benchdock 2>&1 | sed -n 's/.*(\([0-9]*\) bytes).*/\1/p')
python3 - "$repo/target/bench/transfer.json" "$original_bytes" "$ours" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
orig = r["2.0.7 pipe (save | gzip | ssh gunzip | load)"]
ours = r["transfer-image (first)"]
floor = r["floor: docker load -i on the remote"]
saved = r["transfer-image --docker-save (first)"]
ob, nb = int(sys.argv[2]), int(sys.argv[3])
print(f"first transfer: ours {ours:.2f} s, 2.0.7 {orig:.2f} s ({orig/ours:.1f}x faster, target >= 2); "
      f"floor {floor:.2f} s (ours {ours/floor:.2f}x the floor, target <= 1.5)")
print(f"with --docker-save: {saved:.2f} s ({saved/floor:.2f}x the floor)")
print(f"after a one-layer change: ours {nb} bytes, 2.0.7's full transfer {ob} bytes ({ob/max(nb,1):.0f}x fewer, target >= 10)")
PY
