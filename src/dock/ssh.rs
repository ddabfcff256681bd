//! ssh to docks: the options every connection to a dock gets, and the `ssh` shim that
//! gives them to the ssh the docker CLI starts for `DOCKER_HOST=ssh://…`.
//!
//! The docker CLI runs `ssh -o ConnectTimeout=30 -T -l USER -- HOST docker system
//! dial-stdio` for every command, a new SSH handshake each time. `source dock` puts a
//! directory first on PATH whose `ssh` is this binary: for the docked host it adds the
//! dock's options (one control master reused by every call, the dock's own known_hosts
//! with accept-new) and execs the real ssh; for any other host it execs the real ssh
//! untouched.

use crate::dock::{self, Dock};
use crate::plan::{Invocation, quote};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the shim lives: `~/.docker/.dockerutils/bin/ssh`.
pub(crate) fn shim_dir() -> PathBuf {
    dock::registry_dir().join(".dockerutils").join("bin")
}

/// Makes sure the shim is a link to this binary.
pub(crate) fn ensure_shim() -> std::io::Result<PathBuf> {
    let dir = shim_dir();
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let link = dir.join("ssh");
    if std::fs::read_link(&link).ok().as_deref() != Some(exe.as_path()) {
        let tmp = dir.join(format!(".ssh.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp)?;
        std::fs::rename(&tmp, &link)?;
    }
    Ok(dir)
}

/// An ssh to the dock with its options; `remote` is the command to run there, if any.
pub(crate) fn to_dock(dock: &Dock, tty: bool, remote: &[String]) -> Invocation {
    let mut inv = Invocation::new(
        "ssh",
        std::env::current_dir().unwrap_or_else(|_| "/".into()),
    )
    .args(dock.ssh_options());
    if tty {
        inv = inv.arg("-t");
    }
    inv.args(["-o", "LogLevel=error", "--"])
        .arg(dock.destination())
        .args(remote.iter().map(String::as_str))
}

/// A plan step that runs `words` on the dock through the SSH layer (each one word there,
/// whatever it holds); shown as the `ssh` line that does the same (each word quoted for
/// the dock's shell, which the ssh CLI joins them for).
pub(crate) fn on_dock(dock: &Dock, words: &[&str]) -> Invocation {
    let quoted: Vec<String> = words.iter().map(|w| quote(w)).collect();
    let mut inv = to_dock(dock, false, &quoted);
    inv.on_dock = Some(Box::new(crate::plan::OnDock {
        options: dock.ssh_options(),
        dest: dock.destination(),
        name: dock.name().to_string(),
        words: words.iter().map(|w| w.to_string()).collect(),
        forward: None,
    }));
    inv
}

/// A plan step that runs `script` on the dock: `/bin/sh -c SCRIPT` (see [`on_dock`]).
pub(crate) fn script_on_dock(dock: &Dock, script: &str) -> Invocation {
    on_dock(dock, &["/bin/sh", "-c", script])
}

/// `ssh -N -L [BIND:]LOCAL:127.0.0.1:REMOTE` to the dock: a local port forwarded to a port
/// on the dock's loopback, where a notebook listens without being exposed on the dock's
/// network. Its own connection (not the shared one, which closes 10 minutes after its
/// last session). `bind`: the local address it listens on (ssh's default: loopback).
/// What runs is `service::notebook::Tunnel`: a master of its own with the forward asked
/// of it through openssh; this line is the ssh command that does the same.
pub(crate) fn tunnel(dock: &Dock, bind: Option<&str>, local: u16, remote: u16) -> Invocation {
    let spec = match bind {
        Some(addr) if addr.contains(':') => format!("[{addr}]:{local}:127.0.0.1:{remote}"),
        Some(addr) => format!("{addr}:{local}:127.0.0.1:{remote}"),
        None => format!("{local}:127.0.0.1:{remote}"),
    };
    let mut inv = Invocation::new(
        "ssh",
        std::env::current_dir().unwrap_or_else(|_| "/".into()),
    )
    .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
    .args(dock.ssh_options())
    .args([
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "LogLevel=error",
        "-N",
        "-L",
    ])
    .arg(spec)
    .arg(dock.destination());
    inv.on_dock = Some(Box::new(crate::plan::OnDock {
        options: dock.ssh_options(),
        dest: dock.destination(),
        name: dock.name().to_string(),
        words: vec![],
        forward: Some((bind.map(str::to_string), local, remote)),
    }));
    inv
}

/// ssh options that take a value (the word after them is not the destination).
const WITH_VALUE: &str = "BbcDEeFIiJLlmOopQRSWw";

/// Where an ssh command line goes: the host, and the user and port when it says them
/// (`-l`, `-p`, `-o User=`, `-o Port=`, `user@host`, `ssh://user@host:port`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Destination {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<String>,
}

/// The destination host of an ssh command line (`user@host` or `host`), if any.
#[cfg(test)]
fn destination_host(args: &[OsString]) -> Option<String> {
    destination(args).map(|d| d.host)
}

/// The destination of an ssh command line, if any.
pub(crate) fn destination(args: &[OsString]) -> Option<Destination> {
    let mut user = None;
    let mut port = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--" {
            let dest = args.get(i + 1)?.to_string_lossy();
            return Some(parse_destination(&dest, user, port));
        }
        if let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
            // `-p 22` takes the next word; `-p22` carries its value. Flags cluster
            // (`-tp22`): the first flag that takes a value ends the cluster.
            for (at, flag) in flags.char_indices() {
                if !WITH_VALUE.contains(flag) {
                    continue;
                }
                let rest = &flags[at + flag.len_utf8()..];
                let value = if rest.is_empty() {
                    i += 1;
                    args.get(i).map(|v| v.to_string_lossy().into_owned())
                } else {
                    Some(rest.to_string())
                };
                match (flag, value) {
                    ('l', Some(v)) => user = Some(v),
                    ('p', Some(v)) => port = Some(v),
                    ('o', Some(v)) => {
                        let (key, val) = v
                            .split_once(['=', ' '])
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .unwrap_or_default();
                        match key.as_str() {
                            "user" => user = Some(val),
                            "port" => port = Some(val),
                            _ => {}
                        }
                    }
                    _ => {}
                }
                break;
            }
        } else {
            return Some(parse_destination(&a, user, port));
        }
        i += 1;
    }
    None
}

fn parse_destination(dest: &str, user: Option<String>, port: Option<String>) -> Destination {
    let uri = dest.strip_prefix("ssh://");
    let dest = uri.unwrap_or(dest);
    let (given_user, hostport) = match dest.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, dest),
    };
    // Only the URI form carries a port (`host:port`); plain ssh takes `host` whole.
    let (host, given_port) = match uri.and(hostport.rsplit_once(':')) {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
            (h.to_string(), Some(p.to_string()))
        }
        _ => (hostport.to_string(), None),
    };
    Destination {
        // user@host wins over -l, as in ssh.
        user: given_user.or(user),
        host: host.trim_matches(['[', ']']).to_string(),
        port: given_port.or(port),
    }
}

/// Does this ssh command line go to the dock as its registered user, on port 22? Only
/// then may it ride the dock's shared connection: `ssh root@<dock-ip>` or `ssh -p 2222
/// <dock-ip>` while docked is another login, which must neither reuse the dock user's
/// connection nor be told the dock's known_hosts.
pub(crate) fn is_the_docks(dest: &Destination, dock: &Dock) -> bool {
    (dest.host == dock.ip || dest.host == dock.hostname)
        && dest.user.as_deref() == Some(dock.user.as_str())
        && dest.port.as_deref().is_none_or(|p| p == "22")
}

/// The real ssh, bypassing the shim (`ssh` when none is found: spawning says so). A
/// tunnel needs it: docked, the shim would put the dock's shared-connection options
/// before the tunnel's own (ssh takes an option's first value), and an `ssh -N -L` that
/// rides the shared connection hands the forward to its master and exits at once, so the
/// forward would outlive the notebook.
pub(crate) fn real_ssh_program() -> PathBuf {
    real_ssh(&shim_dir()).unwrap_or_else(|| "ssh".into())
}

/// The real ssh: the first on PATH that is not in the shim's directory.
fn real_ssh(shim: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.as_path() != shim)
        .map(|dir| dir.join("ssh"))
        .find(|candidate| {
            candidate.is_file()
                && std::fs::canonicalize(candidate).ok() != std::env::current_exe().ok()
        })
}

/// Entry of the shim (this binary invoked as `ssh`).
pub(crate) fn shim_main(argv: Vec<OsString>) -> i32 {
    let args = &argv[1..];
    let Some(ssh) = real_ssh(&shim_dir()) else {
        eprintln!("dockerutils ssh shim: no ssh found on PATH (install openssh-client)");
        return 127;
    };
    let mut cmd = crate::process::Command::new(&ssh);
    if let (Some(dest), Some(current)) = (destination(args), dock::current())
        && is_the_docks(&dest, &current)
    {
        cmd.args(current.ssh_options());
    }
    let err = crate::process::replace(cmd.args(args));
    eprintln!("dockerutils ssh shim: cannot run {}: {err}", ssh.display());
    126
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn only_the_docks_own_user_host_and_port_ride_its_connection() {
        let dock = Dock {
            user: "dockuser".into(),
            moniker: "d".into(),
            hostname: "10.0.0.5".into(),
            ip: "10.0.0.5".into(),
            extra: vec![],
            dir: "/h/.docker/10.0.0.5".into(),
        };
        let docks = |line: &str| is_the_docks(&destination(&words(line)).unwrap(), &dock);
        // What the docker CLI runs for DOCKER_HOST=ssh://dockuser@10.0.0.5.
        assert!(docks(
            "-o ConnectTimeout=30 -T -l dockuser -- 10.0.0.5 docker system dial-stdio"
        ));
        assert!(docks("dockuser@10.0.0.5 ls"));
        assert!(docks("-p 22 ssh://dockuser@10.0.0.5:22"));
        assert!(!docks("root@10.0.0.5"));
        assert!(!docks("-l root 10.0.0.5"));
        assert!(!docks("-p 2222 dockuser@10.0.0.5"));
        assert!(!docks("-p2222 dockuser@10.0.0.5"));
        assert!(!docks("-o Port=2222 dockuser@10.0.0.5"));
        assert!(!docks("ssh://dockuser@10.0.0.5:2222"));
        assert!(!docks("-o User=root 10.0.0.5"));
        assert!(
            !docks("10.0.0.5"),
            "no user said: not assumed to be the dock's"
        );
        assert!(!docks("dockuser@10.0.0.6"));
        assert!(docks("-tp22 -l dockuser 10.0.0.5"));
    }

    #[test]
    fn finds_the_destination_like_ssh() {
        let cases = [
            (
                "-o ConnectTimeout=30 -T -l dockuser -- 127.0.0.2 docker system dial-stdio",
                Some("127.0.0.2"),
            ),
            ("-p 2222 ann@10.0.0.5 ls", Some("10.0.0.5")),
            ("-p2222 -i key git@github.com", Some("github.com")),
            ("-V", None),
        ];
        for (line, host) in cases {
            assert_eq!(destination_host(&words(line)).as_deref(), host, "{line}");
        }
    }
}
