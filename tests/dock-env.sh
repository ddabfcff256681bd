#!/usr/bin/env bash
# The test docks: two more Docker engines, distinct from the machine's and from each
# other, each reachable only over SSH.
#   eval "$(bash tests/dock-env.sh start)"   # prints the exports the tests read
#   bash tests/dock-env.sh stop
#   eval "$(bash tests/dock-env.sh start-second)"   # only the second dock, next to a running
#                                                   # first (its state dir, agent and key)
#   bash tests/dock-env.sh stop-second
# - dockerd with its own data-root, exec-root, pidfile, unix socket and bridge (dock0,
#   never --bridge=none, which would delete the first engine's docker0);
# - Debian's sshd on 127.0.0.2:22 for the user `dockuser`, whose sessions get
#   DOCKER_HOST=<that socket> (SetEnv), so `docker` there talks to the dock's engine
#   (and for `nodocker`, without docker on its PATH, and `wrapdock`, with ~/bin first);
# - an ssh-agent holding the client key (ssh reads keys from the passwd home, not $HOME);
# - a local user `duclient` whose own key (~duclient/.ssh/id_ed25519) may log in as
#   `dockuser`: ssh reads ~/.ssh/config from the passwd home, so the tests of
#   `dockerutils ssh-config` (plain `ssh MONIKER`, rsync, docker --context) run as that
#   user, never touching root's ~/.ssh/config; its key's fingerprint in sshd.log counts
#   its connections apart from everyone else's.
# - a second dock like the first (transfer-image between docks, fan-out): its own
#   dockerd (data-root, exec-root, socket, bridge dock1) and sshd on 127.0.0.3, for the
#   same `dockuser` with the same key (DOCKERUTILS_TEST_DOCK2_*).
# State (keys, data) in target/dock-env (DOCKERUTILS_DOCK_ENV_STATE to use another, e.g.
# the running first dock's); sockets in /run/dockerutils-test-dock and …-dock2.
set -euo pipefail
cd "$(dirname "$0")/.."
state=${DOCKERUTILS_DOCK_ENV_STATE:-$PWD/target/dock-env}
run=/run/dockerutils-test-dock
sock=$run/docker.sock
ip=127.0.0.2
user=dockuser
# The second dock.
run2=/run/dockerutils-test-dock2
sock2=$run2/docker.sock
ip2=127.0.0.3
log() { printf '[dock-env] %s\n' "$*" >&2; }

# kill_pidfiles FILE...: ends the process each names (waiting up to 10 s) and removes it.
kill_pidfiles() {
  for pidfile in "$@"; do
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      rm -f "$pidfile"
    fi
  done
}

stop_second() {
  kill_pidfiles "$state/sshd2.pid" "$run2/dockerd.pid"
  ip link del dock1 2>/dev/null || true
}

stop() {
  stop_second
  kill_pidfiles "$state/sshd.pid" "$run/dockerd.pid" "$state/agent.pid"
  ip link del dock0 2>/dev/null || true
}

start() {
  stop
  mkdir -p "$state" "$run" /run/sshd
  chmod 755 "$state"
  if ! ip link show dock0 >/dev/null 2>&1; then
    ip link add dock0 type bridge
    ip addr add 172.29.255.1/24 dev dock0
    ip link set dock0 up
  fi
  getent group docker >/dev/null || groupadd docker
  id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash -G docker "$user"
  usermod -p '*' "$user"   # a locked account is refused by sshd
  # A second user for whom the dock has no docker (PATH without it).
  id nodocker >/dev/null 2>&1 || useradd -m -s /bin/sh nodocker
  usermod -p '*' nodocker
  # A third whose PATH starts with ~/bin, where a test can put a `docker` of its own
  # (tests/docks.rs: a remote that refuses the first `docker load`).
  id wrapdock >/dev/null 2>&1 || useradd -m -s /bin/sh -G docker wrapdock
  usermod -p '*' wrapdock
  wrap_home=$(getent passwd wrapdock | cut -d: -f6)
  id duclient >/dev/null 2>&1 || useradd -m -s /bin/sh duclient
  usermod -p '*' duclient
  client_home=$(getent passwd duclient | cut -d: -f6)
  install -d -m 0700 -o duclient -g duclient "$client_home/.ssh"
  [ -f "$client_home/.ssh/id_ed25519" ] || runuser -u duclient -- ssh-keygen -q -t ed25519 -N '' -f "$client_home/.ssh/id_ed25519"
  dockerd --data-root "$state/data" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
    -H "unix://$sock" --group docker --bridge=dock0 --iptables=false \
    >"$state/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1 && break; sleep 0.5; done
  DOCKER_HOST=unix://$sock docker info >/dev/null 2>&1 || { log "the dock's dockerd did not start:"; tail -20 "$state/dockerd.log" >&2; exit 1; }

  [ -f "$state/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$state/ssh_host_ed25519_key"
  [ -f "$state/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$state/id_ed25519"
  install -m 0644 "$state/id_ed25519.pub" "$state/authorized_keys"
  cat "$client_home/.ssh/id_ed25519.pub" >>"$state/authorized_keys"
  cat >"$state/sshd_config" <<CFG
ListenAddress $ip
Port 22
HostKey $state/ssh_host_ed25519_key
PidFile $state/sshd.pid
AuthorizedKeysFile $state/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# scp (the SFTP protocol by default) to a dock, as a real host allows it.
Subsystem sftp internal-sftp
AllowUsers $user nodocker wrapdock
SetEnv DOCKER_HOST=unix://$sock
Match User nodocker
  SetEnv PATH=/nonexistent
Match User wrapdock
  SetEnv DOCKER_HOST=unix://$sock PATH=$wrap_home/bin:/usr/local/bin:/usr/bin:/bin
CFG
  /usr/sbin/sshd -f "$state/sshd_config" -E "$state/sshd.log"
  agent=$(ssh-agent -s)
  eval "$agent" >/dev/null
  echo "$SSH_AGENT_PID" >"$state/agent.pid"
  ssh-add -q "$state/id_ed25519"
  echo "export SSH_AUTH_SOCK=$SSH_AUTH_SOCK"
  echo "export DOCKERUTILS_TEST_DOCK_IP=$ip"
  echo "export DOCKERUTILS_TEST_DOCK_USER=$user"
  echo "export DOCKERUTILS_TEST_DOCK_ENGINE=unix://$sock"
  echo "export DOCKERUTILS_TEST_DOCK_SSHD_LOG=$state/sshd.log"
  echo "export DOCKERUTILS_TEST_DOCK_CLIENT=duclient"
  log "dock up: $user@$ip, engine unix://$sock"
  start_second
}

# The second dock, beside a running first: the same users, key and host key (from
# $state), its own engine, bridge and sshd. Prints its exports.
start_second() {
  stop_second
  [ -f "$state/authorized_keys" ] || { log "no $state/authorized_keys: start the first dock first"; exit 1; }
  mkdir -p "$run2"
  if ! ip link show dock1 >/dev/null 2>&1; then
    ip link add dock1 type bridge
    ip addr add 172.29.254.1/24 dev dock1
    ip link set dock1 up
  fi
  dockerd --data-root "$state/data2" --exec-root "$run2/exec" --pidfile "$run2/dockerd.pid" \
    -H "unix://$sock2" --group docker --bridge=dock1 --iptables=false \
    >"$state/dockerd2.log" 2>&1 &
  for _ in $(seq 1 60); do DOCKER_HOST=unix://$sock2 docker info >/dev/null 2>&1 && break; sleep 0.5; done
  DOCKER_HOST=unix://$sock2 docker info >/dev/null 2>&1 || { log "the second dock's dockerd did not start:"; tail -20 "$state/dockerd2.log" >&2; exit 1; }
  cat >"$state/sshd2_config" <<CFG
ListenAddress $ip2
Port 22
HostKey $state/ssh_host_ed25519_key
PidFile $state/sshd2.pid
AuthorizedKeysFile $state/authorized_keys
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowUsers $user
SetEnv DOCKER_HOST=unix://$sock2
CFG
  /usr/sbin/sshd -f "$state/sshd2_config" -E "$state/sshd2.log"
  echo "export DOCKERUTILS_TEST_DOCK2_IP=$ip2"
  echo "export DOCKERUTILS_TEST_DOCK2_ENGINE=unix://$sock2"
  echo "export DOCKERUTILS_TEST_DOCK2_SSHD_LOG=$state/sshd2.log"
  log "second dock up: $user@$ip2, engine unix://$sock2"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  start-second) start_second ;;
  stop-second) stop_second ;;
  *) echo "usage: $0 start|stop|start-second|stop-second" >&2; exit 2 ;;
esac
