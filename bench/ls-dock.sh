#!/usr/bin/env bash
# ls-dock with 50 registered docks (EC2 instances in a moto server on 127.0.0.1), two parts:
#   states: ours against the original 2.0.7 `ls-dock` (one `aws ec2 describe-instances`
#     process per dock), side by side in the same run, and the number of API calls each
#     makes (counted by tests/aws-proxy.py in front of moto);
#   idle (issue 14): ours with its IDLE column, 12 docks running of which 10 answer over
#     ssh (the test dock of tests/dock-env.sh, under 10 host names) and 2 never answer
#     (listeners that accept and say nothing): the whole list, timeouts included.
#   bash bench/ls-dock.sh                       # both
#   LSDOCK_PARTS=idle bash bench/ls-dock.sh     # one of them
# The idle part runs as root (a private /etc/hosts in a mount namespace of its own for the
# 10 host names; port 22 of two loopback addresses for the silent docks) and uses the
# running test dock when DOCKERUTILS_TEST_DOCK_IP is set, else starts one (and stops it).
set -euo pipefail
source "$(dirname "$0")/common.sh"
for venv in oracle-venv:dockerutils==2.0.7 moto-venv:moto[server]; do
  dir=target/${venv%%:*}
  [ -x "$dir/bin/python" ] || { python3 -m venv "$dir" && "$dir/bin/pip" install -q "${venv#*:}"; }
done
parts=${LSDOCK_PARTS:-states idle}
work=$(mktemp -d /var/tmp/du-bench-lsdock-XXXXXX)
pids=()
started_dock=""
cleanup() {
  for socket in "$work"/*/.docker/.dockerutils/cm/*; do
    [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit x 2>/dev/null || true
  done
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"
  if [ -n "$started_dock" ]; then bash "$repo/tests/dock-env.sh" stop; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start_moto NAME: a moto server with the proxy in front, in $work/NAME; sets moto_port, proxy_port.
start_moto() {
  mkdir -p "$work/$1"
  moto_port=$(port); proxy_port=$(port)
  target/moto-venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 & pids+=($!)
  target/moto-venv/bin/python tests/aws-proxy.py --listen "$proxy_port" --upstream "http://127.0.0.1:$moto_port" \
    --log "$work/$1/actions.log" --delay-file "$work/none" & pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$proxy_port) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$moto_port) 2>/dev/null && break; sleep 0.1; done
}
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
  AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_ENDPOINT_URL DOCKERUTILS_IDLE_ROOT

states() {
start_moto states
export HOME=$work/states/home
mkdir -p "$HOME/.docker"
# 50 instances; 25 docks registered with their instance id (as create-dock does), 25 by IP only.
AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port target/moto-venv/bin/python - "$HOME/.docker" <<'PY'
import boto3, os, sys
ec2 = boto3.client("ec2")
img = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
for n, i in enumerate(ec2.run_instances(ImageId=img, MinCount=50, MaxCount=50)["Instances"]):
    ip = i["PrivateIpAddress"]
    os.makedirs(os.path.join(sys.argv[1], ip))
    with open(os.path.join(sys.argv[1], ip, "connection_config.txt"), "w") as f:
        f.write(f"DOCK_USER=ubuntu\nDOCK_MONIKER=dock{n}\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\n")
        if n % 2 == 0:
            f.write(f"DOCK_INSTANCE_ID={i['InstanceId']}\n")
PY
export AWS_ENDPOINT_URL=http://127.0.0.1:$proxy_port
# Prices from dock.cfg: moto has no Price List.
echo 'price_per_hour=0.0104' >"$HOME/.docker/dock.cfg"
ours=$exe
orig=$repo/target/oracle-venv/bin
calls() { rm -f "$work/states/actions.log"; "$@" >/dev/null; wc -l < "$work/states/actions.log"; }
ours_calls=$(calls "$ours" ls-dock)
orig_calls=$(PATH=$orig:$PATH calls "$orig/ls-dock")
[ "$("$ours" ls-dock | grep -c ' running$')" = 50 ] || { echo "ours does not list 50 running docks" >&2; exit 1; }
[ "$(PATH=$orig:$PATH "$orig/ls-dock" | grep -c ': running$')" = 50 ] || { echo "2.0.7 does not list 50 running docks" >&2; exit 1; }
PATH=$orig:$PATH hyperfine --warmup 1 --runs 5 \
  --export-json "$repo/target/bench/ls-dock.json" --export-markdown "$repo/target/bench/ls-dock.md" \
  -n "ls-dock (ours)" "$ours ls-dock" \
  -n "ls-dock (2.0.7)" "$orig/ls-dock"
python3 - "$repo/target/bench/ls-dock.json" "$ours_calls" "$orig_calls" <<'PY'
import json, sys
r = {x["command"]: x["mean"] for x in json.load(open(sys.argv[1]))["results"]}
ours, orig = r["ls-dock (ours)"], r["ls-dock (2.0.7)"]
print(f"50 docks: ours {ours*1e3:.0f} ms with {sys.argv[2]} API call(s); 2.0.7 {orig:.1f} s with {sys.argv[3]} calls: {orig/ours:.0f}x faster")
PY
unset AWS_ENDPOINT_URL
}

idle() {
[ "$(id -u)" = 0 ] || { echo "the idle part runs as root" >&2; exit 1; }
if [ -z "${DOCKERUTILS_TEST_DOCK_IP:-}" ]; then
  eval "$(bash tests/dock-env.sh start)"
  started_dock=1
fi
start_moto idle
export HOME=$work/idle/home
mkdir -p "$HOME/.docker"
# The watcher's state on the test dock, as its check leaves it: idle for ten minutes.
root=$work/idle/watcher
mkdir -p "$root/var/lib/dockerutils-idle"
printf 'limit=3600\nlast_active=%s\nactive=none\n' "$(( $(date +%s) - 600 ))" >"$root/var/lib/dockerutils-idle/state"
chmod -R a+rX "$work"
# Two docks that never answer: listeners on port 22 that accept and say nothing.
silent=()
for n in $(seq 20 60); do
  [ ${#silent[@]} = 2 ] && break
  ip=127.0.$((40 + n)).$n
  if python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],22))' "$ip" 2>/dev/null; then
    python3 -c 'import socket,sys,time; s=socket.socket(); s.bind((sys.argv[1],22)); s.listen(64); time.sleep(3600)' "$ip" & pids+=($!)
    silent+=("$ip")
  fi
done
[ ${#silent[@]} = 2 ] || { echo "no free loopback addresses for the silent docks" >&2; exit 1; }
# 50 instances: 12 running (10 the test dock, 2 silent), 38 stopped (not asked over ssh).
AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port target/moto-venv/bin/python - "$HOME/.docker" \
  "$DOCKERUTILS_TEST_DOCK_USER" "${silent[@]}" <<'PY'
import boto3, os, sys
registry, user, silent = sys.argv[1], sys.argv[2], sys.argv[3:]
ec2 = boto3.client("ec2")
img = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
instances = ec2.run_instances(ImageId=img, MinCount=50, MaxCount=50, InstanceType="t3.micro")["Instances"]
ec2.stop_instances(InstanceIds=[i["InstanceId"] for i in instances[12:]])
for n, i in enumerate(instances):
    if n < 10:
        address, dock_user = f"benchdock-{n}", user
    elif n < 12:
        address, dock_user = silent[n - 10], "ubuntu"
    else:
        address, dock_user = i["PrivateIpAddress"], "ubuntu"
    os.makedirs(os.path.join(registry, address))
    with open(os.path.join(registry, address, "connection_config.txt"), "w") as f:
        f.write(f"DOCK_USER={dock_user}\nDOCK_MONIKER=dock{n}\nDOCK_HOSTNAME={address}\n"
                f"DOCK_IP={address}\nDOCK_INSTANCE_ID={i['InstanceId']}\n")
PY
echo 'price_per_hour=0.0104' >"$HOME/.docker/dock.cfg"
# The 10 host names of the test dock, in an /etc/hosts that only this part's processes see.
{ cat /etc/hosts; for n in $(seq 0 9); do echo "$DOCKERUTILS_TEST_DOCK_IP benchdock-$n"; done; } >"$work/idle/hosts"
export AWS_ENDPOINT_URL=http://127.0.0.1:$proxy_port DOCKERUTILS_IDLE_ROOT=$root
in_ns() { unshare --mount --propagation private sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$work/idle/hosts" "$@"; }
listing=$(in_ns "$exe" ls-dock)
echo "$listing" | head -3
[ "$(echo "$listing" | grep -c ' 10m/1h00m ')" = 10 ] || { echo "not 10 docks idle for 10m:" >&2; echo "$listing" >&2; exit 1; }
[ "$(echo "$listing" | awk '$8 == "?"' | wc -l)" = 2 ] || { echo "not 2 docks with IDLE ?:" >&2; echo "$listing" >&2; exit 1; }
# Closes the docks' shared ssh connections: the next ls-dock makes them anew.
cat >"$work/idle/close-shared" <<SH
#!/bin/sh
for s in "$HOME"/.docker/.dockerutils/cm/*; do [ -S "\$s" ] && ssh -o ControlPath="\$s" -O exit x 2>/dev/null; done; true
SH
chmod 755 "$work/idle/close-shared"
in_ns hyperfine --warmup 1 --runs 10 \
  --export-json "$repo/target/bench/ls-dock-idle.json" --export-markdown "$repo/target/bench/ls-dock-idle.md" \
  --prepare true -n "ls-dock, shared ssh connections up" "$exe ls-dock" \
  --prepare "$work/idle/close-shared" -n "ls-dock, no ssh connection yet" "$exe ls-dock"
python3 - "$repo/target/bench/ls-dock-idle.json" <<'PY'
import json, sys
for x in json.load(open(sys.argv[1]))["results"]:
    print(f"{x['command']}: mean {x['mean']:.2f} s, max {x['max']:.2f} s (target: under 2 s)")
PY
}

for part in $parts; do "$part"; done
