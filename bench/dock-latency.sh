#!/usr/bin/env bash
# Docked `docker ps` latency (issue 3): through `source dock` (the ssh shim: one control
# master reused by every call) against plain DOCKER_HOST=ssh:// (a new SSH handshake per
# call, as with 2.0.7's dock), on the test dock of tests/dock-env.sh (127.0.0.2).
#   bash bench/dock-latency.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
eval "$(bash tests/dock-env.sh start)"
work=$(mktemp -d)
trap 'bash "$repo/tests/dock-env.sh" stop; rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/plain" "$work/home"
install_commands "$work/bin"
# Plain ssh:// as a user without our shim gets it: no multiplexing (host key not checked,
# as 2.0.7's dock does).
printf '#!/bin/sh\nexec /usr/bin/ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=error "$@"\n' > "$work/plain/ssh"
chmod +x "$work/plain/ssh"
export HOME=$work/home PATH=$work/bin:$PATH
register-dock "$DOCKERUTILS_TEST_DOCK_IP" benchdock -u "$DOCKERUTILS_TEST_DOCK_USER" >/dev/null
set +u; eval "$(dockerutils dock-env benchdock 2>/dev/null)"; set -u
docked_path=$PATH
hyperfine -N --warmup 5 --runs 60 \
  --export-json "$repo/target/bench/dock-latency.json" --export-markdown "$repo/target/bench/dock-latency.md" \
  -n 'plain ssh://' "env PATH=$work/plain:$PATH DOCKER_HOST=$DOCKER_HOST docker ps" \
  -n 'docked (source dock)' "env PATH=$docked_path DOCKER_HOST=$DOCKER_HOST DOCKER_IP=$DOCKER_IP docker ps"
python3 - "$repo/target/bench/dock-latency.json" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
plain, docked = r["plain ssh://"], r["docked (source dock)"]
print(f"plain {plain*1e3:.1f} ms, docked {docked*1e3:.1f} ms: {plain/docked:.1f}x lower latency (target >= 3)")
PY
ssh -o ControlPath="$HOME/.docker/$DOCKERUTILS_TEST_DOCK_IP/cm" -O exit "$DOCKERUTILS_TEST_DOCK_USER@$DOCKERUTILS_TEST_DOCK_IP" 2>/dev/null || true
