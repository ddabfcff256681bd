#!/usr/bin/env bash
# Docked `docker ps` latency (issues 3 and 13) on the test dock of tests/dock-env.sh
# (127.0.0.2), one hyperfine run of four ways to reach it:
#   - plain DOCKER_HOST=ssh://USER@IP, as 2.0.7's dock: a new SSH handshake per call
#     (`ssh -F none`: no ssh config; host key unchecked, as 2.0.7);
#   - docked with `source dock` (what dock-env prints without the Include): the ssh shim
#     gives the docker CLI's ssh the dock's options, one control master every call reuses;
#   - `docker --context MONIKER` and `docker -H ssh://MONIKER` after
#     `dockerutils ssh-config --install`: the docker CLI's own ssh reads the dock's block.
# ssh reads ~/.ssh/config from the passwd entry's home, not $HOME: everything runs as the
# test user of tests/dock-env.sh (duclient) in its home, whose ~/.ssh/config is restored
# and ~/.docker removed after. With DOCKERUTILS_TEST_DOCK_IP set, the running test dock is
# used; else one is started (and stopped).
#   bash bench/dock-latency.sh
#   DOCKERUTILS_BENCH_PROFILE=dev bash bench/dock-latency.sh   # the shim as a debug build
set -euo pipefail
source "$(dirname "$0")/common.sh"
started=""
if [ -z "${DOCKERUTILS_TEST_DOCK_IP:-}" ]; then
  eval "$(bash tests/dock-env.sh start)"
  started=1
fi
ip=$DOCKERUTILS_TEST_DOCK_IP
user=$DOCKERUTILS_TEST_DOCK_USER
client=${DOCKERUTILS_TEST_DOCK_CLIENT:-duclient}
home=$(getent passwd "$client" | cut -d: -f6)
[ -n "$home" ] || { echo "no user $client: tests/dock-env.sh start makes it" >&2; exit 1; }
[ ! -e "$home/.docker" ] || { echo "$home/.docker exists: is a test running as $client?" >&2; exit 1; }
work=$(mktemp -d)
chmod 755 "$work"
mkdir "$work/out"
chown "$client" "$work/out"
saved=""
if [ -e "$home/.ssh/config" ]; then cp -p "$home/.ssh/config" "$work/config.saved"; saved=1; fi
client_path=$work/bin:/usr/local/bin:/usr/bin:/bin
as_client() {
  setpriv --reuid="$client" --regid="$client" --init-groups \
    env -i HOME="$home" USER="$client" LOGNAME="$client" PATH="$client_path" "$@"
}
cleanup() {
  as_client dockerutils ssh-config --uninstall >/dev/null 2>&1 || true
  for socket in "$home"/.docker/.dockerutils/cm/*; do
    [ -S "$socket" ] && as_client ssh -o ControlPath="$socket" -O exit x 2>/dev/null || true
  done
  if [ -n "$saved" ]; then cp -p "$work/config.saved" "$home/.ssh/config"; else rm -f "$home/.ssh/config"; fi
  rm -f "$home/.ssh/config.dockerutils-backup"
  rm -rf "$home/.docker" "$work"
  if [ -n "$started" ]; then bash "$repo/tests/dock-env.sh" stop; fi
}
trap cleanup EXIT
install_commands "$work/bin"
# Plain ssh:// as a user without our shim or ssh config gets it: no multiplexing.
mkdir -p "$work/plain"
printf '#!/bin/sh\nexec /usr/bin/ssh -F none -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=error "$@"\n' >"$work/plain/ssh"
chmod 755 "$work/plain" "$work/plain/ssh"
as_client register-dock "$ip" benchdock -u "$user" >/dev/null
# Today's docked shell: the PATH `source dock` gives without the Include (the shim first).
docked_path=$(as_client bash -c 'eval "$(dockerutils dock-env benchdock 2>/dev/null)"; echo "$PATH"')
case "$docked_path" in "$home/.docker/.dockerutils/bin:"*) ;; *) echo "no shim on $docked_path" >&2; exit 1 ;; esac
as_client dockerutils ssh-config --install >/dev/null
[ "$(as_client docker context inspect --format '{{.Endpoints.docker.Host}}' benchdock)" = ssh://benchdock ]
as_client hyperfine -N --warmup 5 --runs 60 \
  --export-json "$work/out/dock-latency.json" --export-markdown "$work/out/dock-latency.md" \
  -n 'plain ssh://' "env PATH=$work/plain:$client_path DOCKER_HOST=ssh://$user@$ip docker ps" \
  -n 'docked (source dock, shim)' "env PATH=$docked_path DOCKER_HOST=ssh://$user@$ip DOCKER_IP=$ip docker ps" \
  -n 'docker --context benchdock' "docker --context benchdock ps" \
  -n 'docker -H ssh://benchdock' "docker -H ssh://benchdock ps"
cp "$work/out/dock-latency.json" "$work/out/dock-latency.md" "$repo/target/bench/"
python3 - "$repo/target/bench/dock-latency.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
plain, docked = r["plain ssh://"], r["docked (source dock, shim)"]
print(f"plain {plain*1e3:.1f} ms, docked {docked*1e3:.1f} ms: {plain/docked:.1f}x lower latency (target >= 3)")
for name in ("docker --context benchdock", "docker -H ssh://benchdock"):
    t = r[name]
    print(f"{name}: {t*1e3:.1f} ms, {plain/t:.1f}x lower than plain (target >= 3), "
          f"{t/docked:.2f}x docked (target <= 1.2)")
PY
