#!/usr/bin/env bash
# ls-dock with 50 registered docks (EC2 instances in a moto server on 127.0.0.1), ours
# against the original 2.0.7 `ls-dock` (one `aws ec2 describe-instances` process per dock),
# side by side in the same run, and the number of API calls each makes (counted by
# tests/aws-proxy.py in front of moto).
#   bash bench/ls-dock.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
for venv in oracle-venv:dockerutils==2.0.7 moto-venv:moto[server]; do
  dir=target/${venv%%:*}
  [ -x "$dir/bin/python" ] || { python3 -m venv "$dir" && "$dir/bin/pip" install -q "${venv#*:}"; }
done
work=$(mktemp -d /var/tmp/du-bench-lsdock-XXXXXX)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
moto_port=$(port); proxy_port=$(port)
target/moto-venv/bin/moto_server -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 & pids+=($!)
target/moto-venv/bin/python tests/aws-proxy.py --listen "$proxy_port" --upstream "http://127.0.0.1:$moto_port" \
  --log "$work/actions.log" --delay-file "$work/none" & pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$proxy_port) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$moto_port) 2>/dev/null && break; sleep 0.1; done

export HOME=$work/home AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
  AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
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
ours=$exe
orig=$repo/target/oracle-venv/bin
calls() { rm -f "$work/actions.log"; "$@" >/dev/null; wc -l < "$work/actions.log"; }
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
