#!/usr/bin/env bash
# transfer-image's registry path (--via-registry: the dock's engine pulls from this process
# through an ssh -R forward) against the floor (`docker load` on the remote reading the
# saved archive from a local file) and against the load path, on a ~200 MB image of real
# files (from /usr/lib), over loopback to the test dock of tests/dock-env.sh. Then the
# bytes on the wire after a change to one small top layer, against the full image.
#   bash bench/transfer-registry.sh
# With DOCKERUTILS_TEST_DOCK_IP set (a running test dock, e.g. `source /work/test-env.sh`),
# that dock is used and left running; otherwise tests/dock-env.sh starts one and stops it.
# DOCKERUTILS_BENCH_PROFILE=dev: the debug build (bench/common.sh).
set -euo pipefail
source "$(dirname "$0")/common.sh"
started_env=""
if [ -z "${DOCKERUTILS_TEST_DOCK_IP:-}" ]; then
  eval "$(bash tests/dock-env.sh start)"
  started_env=1
fi
work=$(mktemp -d /var/tmp/du-bench-registry-XXXXXX)
chmod 755 "$work"
image=du-bench-registry-$$:1
first_id=""
remote() { DOCKER_HOST=$DOCKERUTILS_TEST_DOCK_ENGINE docker "$@"; }
cleanup() {
  remote rmi -f "$image" >/dev/null 2>&1 || true
  remote image prune -f >/dev/null 2>&1 || true
  docker rmi -f "$image" $first_id >/dev/null 2>&1 || true
  # The dock's shared connections (a running test dock outlives this script).
  for socket in "$work"/home/.docker/.dockerutils/cm/* "$work"/home/.docker/*/cm-*; do
    [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit x >/dev/null 2>&1 || true
  done
  [ -z "$started_env" ] || bash "$repo/tests/dock-env.sh" stop
  rm -rf "$work"
}
trap cleanup EXIT
bench_home_on_dock "$work"

build_layered_image "$work/ctx" "$image"
first_id=$(docker image inspect --format '{{.Id}}' "$image")
echo "image: $(docker image inspect --format '{{.Size}}' "$image") bytes"
docker save "$image" > "$work/image.tar"
chmod 644 "$work/image.tar"

# Before each run the dock forgets the image and every dangling image (its layers too).
remove_remote="DOCKER_HOST=$DOCKERUTILS_TEST_DOCK_ENGINE docker rmi -f $image >/dev/null 2>&1; DOCKER_HOST=$DOCKERUTILS_TEST_DOCK_ENGINE docker image prune -f >/dev/null 2>&1; true"
hyperfine --runs 3 --prepare "$remove_remote" \
  --export-json "$repo/target/bench/transfer-registry.json" --export-markdown "$repo/target/bench/transfer-registry.md" \
  -n 'transfer-image --via-registry (first)' "transfer-image --via-registry $image benchdock" \
  -n 'transfer-image --via-registry --docker-save (first)' "transfer-image --via-registry --docker-save $image benchdock" \
  -n 'transfer-image, load path (first)' "transfer-image $image benchdock" \
  -n 'floor: docker load -i on the remote' "ssh $ssh_opts $dock 'docker load -i $work/image.tar'"

# Bytes on the wire: the registry path's full transfer, then after a one-layer change.
eval "$remove_remote"
full=$(transfer-image --via-registry "$image" benchdock 2>&1 | sed -n 's/^transfer-image: sent .*(\([0-9]*\) bytes).*/\1/p')
printf 'two\n' > "$work/ctx/top.txt"
docker build -q -t "$image" "$work/ctx" >/dev/null
delta_line=$(transfer-image --via-registry "$image" benchdock 2>&1 | grep '^transfer-image: sent ')
delta=$(sed -n 's/.*(\([0-9]*\) bytes).*/\1/p' <<<"$delta_line")
echo "$delta_line"
python3 - "$repo/target/bench/transfer-registry.json" "$full" "$delta" "$(stat -c %s "$work/image.tar")" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
ours = r["transfer-image --via-registry (first)"]
saved = r["transfer-image --via-registry --docker-save (first)"]
load = r["transfer-image, load path (first)"]
floor = r["floor: docker load -i on the remote"]
full, delta, tar = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"first transfer through the registry: {ours:.2f} s, {ours/floor:.2f}x the floor ({floor:.2f} s; target <= 2); "
      f"with --docker-save {saved:.2f} s ({saved/floor:.2f}x); the load path {load:.2f} s ({load/floor:.2f}x)")
print(f"after a one-layer change: {delta} bytes, against {full} for the whole image through the registry "
      f"({full/max(delta,1):.0f}x fewer, target >= 10) and {tar} bytes of `docker save`")
PY
