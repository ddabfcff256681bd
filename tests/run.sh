#!/usr/bin/env bash
# Runs every test of dockerutils, installing what a fresh machine lacks:
#   - Debian packages: docker.io (engine), busybox-static (test images are FROM scratch
#     with busybox), util-linux (`script`, for the terminal tests), openssh-server,
#     openssh-client, rsync, zsh and iproute2 (the test dock, tests/dock-env.sh),
#     docker-registry (pushes of publish-image), fish (with zsh and bash: the completion
#     tests, tests/completions.rs), man-db (tests/man.rs formats the pages)
#   - dockerutils 2.0.7 from PyPI in target/oracle-venv (the differential test's oracle)
#   - moto[server] from PyPI in target/moto-venv (the AWS API emulator of tests/aws.rs)
# and starting a Docker engine when none answers (stopped again at exit).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mkdir -p target
log() { printf '[tests/run.sh] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || docker info >/dev/null 2>&1 || missing+=(docker.io)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v script >/dev/null 2>&1 || missing+=(util-linux)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
# glibc's static libraries: crates/reader is built static (a dock runs it in an empty container).
[ -e "$(gcc -print-file-name=libc.a 2>/dev/null)" ] || missing+=(libc6-dev)
command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
command -v man >/dev/null 2>&1 || missing+=(man-db)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Docker engine -----------------------------------------------------------------------
dockerd_pid=""
dock_started=""
cleanup() {
  if [ -n "$dock_started" ]; then
    log "stopping the test dock"
    bash "$root/tests/dock-env.sh" stop || true
  fi
  if [ -n "$dockerd_pid" ]; then
    log "stopping the dockerd started for the tests (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  fi
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  log "no Docker engine answers: starting dockerd (log: target/dockerd.log)"
  dockerd >"$root/target/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not come up; its log:"; tail -n 30 "$root/target/dockerd.log" >&2
    exit 1
  fi
fi

# --- the test docks: engines behind sshd on 127.0.0.2 and 127.0.0.3 ----------------------
dock_started=1
eval "$(bash "$root/tests/dock-env.sh" start)"

# --- the original tool, as the differential test's oracle --------------------------------
venv=$root/target/oracle-venv
if ! [ -x "$venv/bin/build-image" ]; then
  log "installing dockerutils==2.0.7 into target/oracle-venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check dockerutils==2.0.7
fi
export DOCKERUTILS_ORACLE=$venv/bin

# --- the AWS API emulator (tests/aws.rs starts one moto_server per test) -----------------
moto_venv=$root/target/moto-venv
if ! [ -x "$moto_venv/bin/moto_server" ]; then
  log "installing moto[server] into target/moto-venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install -q --disable-pip-version-check 'moto[server]'
fi
export DOCKERUTILS_MOTO_VENV=$moto_venv

# --- habits: formatting and lints (Cargo.toml [lints]), before anything runs -------------
log "cargo fmt --check; cargo clippy --all-targets -- -D warnings"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings

# --- tests -------------------------------------------------------------------------------
log "building the static reader a pull back runs on a dock (crates/reader)"
bash crates/reader/build-static.sh >/dev/null

cargo test --no-fail-fast "$@"
