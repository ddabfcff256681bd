#!/usr/bin/env bash
# transfer-image against 2.0.7's pipe (`docker save | gzip | ssh HOST 'gunzip | docker load'`)
# and against the floor (`docker load` on the remote reading the saved archive from a local
# file), on a ~200 MB image of real files (from /usr/lib), over loopback to the test dock of
# tests/dock-env.sh; ours both ways (layers read from the engine's storage, the default
# as root, and --docker-save). Then the bytes on the wire after a change to one small top
# layer. Then pull back (DOCK:IMAGE) against a push of the same image, the bytes of a pull
# back after a one-layer change made on the dock, and, with the second test dock, a
# fan-out to both docks against two transfers in sequence.
#   bash bench/transfer.sh          # PULL_RUNS=N: runs of the push/pull comparison (3)
# The test docks already running (DOCKERUTILS_TEST_DOCK_IP set, as after `source
# /work/test-env.sh` or `eval "$(bash tests/dock-env.sh start)"`) are used as they are;
# otherwise they are started here, and stopped at the end. Only this run's images are
# removed from the engines (by id: they may be shared with other users).
set -euo pipefail
source "$(dirname "$0")/common.sh"
started_docks=""
if [ -z "${DOCKERUTILS_TEST_DOCK_IP:-}" ]; then
  eval "$(bash tests/dock-env.sh start)"
  started_docks=1
fi
dock1=$DOCKERUTILS_TEST_DOCK_ENGINE
dock2=${DOCKERUTILS_TEST_DOCK2_ENGINE:-}
work=$(mktemp -d /var/tmp/du-bench-XXXXXX)
chmod 755 "$work"
image=du-bench-transfer:1
changed=du-bench-transfer:2
ids=()
cleanup() {
  for engine in "$dock1" $dock2; do
    DOCKER_HOST=$engine docker rmi -f "$changed" "$image" "${ids[@]}" >/dev/null 2>&1 || true
  done
  # Both versions locally: the first, untagged by the rebuild, would otherwise stay.
  docker rmi -f "$changed" "$image" "${ids[@]}" >/dev/null 2>&1 || true
  if [ -n "$started_docks" ]; then bash "$repo/tests/dock-env.sh" stop; fi
  rm -rf "$work"
}
trap cleanup EXIT
bench_home_on_dock "$work"

build_layered_image "$work/ctx" "$image"
first_id=$(docker image inspect --format '{{.Id}}' "$image")
ids+=("$first_id")
echo "image: $(docker image inspect --format '{{.Size}}' "$image") bytes"
# The floor's archive, where the remote user can read it.
docker save "$image" > "$work/image.tar"
chmod 644 "$work/image.tar"

# Before each run the dock forgets the image (by id: an untagged copy would still hold
# the layers, and "first transfer" would send only the configuration; the layers are
# stamped, so no other image holds them).
remove_remote="DOCKER_HOST=$dock1 docker rmi -f $first_id >/dev/null 2>&1; true"
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

# --- Pull back: the same image brought back from the dock, against a push of it ---------
# The rebuilt image shares its four big layers with the first (untagged, still here and
# on the dock): both are removed where the transfer must bring everything.
second_id=$(docker image inspect --format '{{.Id}}' "$image")
ids+=("$second_id")
hyperfine --runs "${PULL_RUNS:-3}" \
  --export-json "$repo/target/bench/transfer-pull.json" --export-markdown "$repo/target/bench/transfer-pull.md" \
  --prepare "DOCKER_HOST=$dock1 docker rmi -f $second_id $first_id >/dev/null 2>&1; true" \
  -n 'push: transfer-image IMAGE DOCK' "transfer-image $image benchdock" \
  --prepare "docker rmi -f $second_id $first_id >/dev/null 2>&1; true" \
  -n 'pull back: transfer-image DOCK:IMAGE' "transfer-image benchdock:$image"

# --- Pull back after a one-layer change made on the dock --------------------------------
received() { sed -n 's/^transfer-image: received .*(\([0-9]*\) bytes).*/\1/p'; }
docker rmi -f "$second_id" "$first_id" >/dev/null 2>&1 || true
full_pull=$(transfer-image "benchdock:$image" 2>&1 | received)
mkdir -p "$work/ctx2"
printf 'three\n' > "$work/ctx2/three.txt"
printf 'FROM %s\nCOPY three.txt /three.txt\n' "$image" > "$work/ctx2/Dockerfile"
DOCKER_HOST=$dock1 docker build -q -t "$changed" "$work/ctx2" >/dev/null
ids+=("$(DOCKER_HOST=$dock1 docker image inspect --format '{{.Id}}' "$changed")")
start=$(date +%s.%N)
delta_pull=$(transfer-image "benchdock:$changed" 2>&1 | received)
delta_time=$(echo "$(date +%s.%N) - $start" | bc)

# --- Fan out to both docks, against two transfers in sequence ----------------------------
if [ -n "$dock2" ]; then
  register-dock "$DOCKERUTILS_TEST_DOCK2_IP" benchdock2 -u "$DOCKERUTILS_TEST_DOCK_USER" >/dev/null
  hyperfine --runs 3 \
    --export-json "$repo/target/bench/transfer-fanout.json" --export-markdown "$repo/target/bench/transfer-fanout.md" \
    --prepare "for e in $dock1 $dock2; do DOCKER_HOST=\$e docker rmi -f $changed $second_id $first_id >/dev/null 2>&1; done; true" \
    -n 'two transfers in sequence' "transfer-image $image benchdock && transfer-image $image benchdock2" \
    -n 'fan out: transfer-image IMAGE DOCK1 DOCK2' "transfer-image $image benchdock benchdock2"
fi

python3 - "$repo/target/bench" "$full_pull" "$delta_pull" "$delta_time" <<'PY'
import json, os, sys
d = sys.argv[1]
r = {x["command"]: x["mean"] for x in json.load(open(f"{d}/transfer-pull.json"))["results"]}
push, pull = r["push: transfer-image IMAGE DOCK"], r["pull back: transfer-image DOCK:IMAGE"]
print(f"pull back: {pull:.2f} s, push {push:.2f} s ({pull/push:.2f}x the push, target <= 1.5)")
full, delta, t = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
print(f"pull back after a one-layer change on the dock: {delta} bytes in {t:.1f} s, the whole "
      f"image {full} bytes ({full/max(delta,1):.0f}x fewer, target >= 10)")
if os.path.exists(f"{d}/transfer-fanout.json"):
    r = {x["command"]: x["mean"] for x in json.load(open(f"{d}/transfer-fanout.json"))["results"]}
    seq, fan = r["two transfers in sequence"], r["fan out: transfer-image IMAGE DOCK1 DOCK2"]
    print(f"fan out to two docks: {fan:.2f} s, two in sequence {seq:.2f} s "
          f"({seq/fan:.2f}x faster, target > 1)")
PY
