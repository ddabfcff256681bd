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
use crate::plan::Invocation;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Where the shim lives: `~/.docker/.dockerutils/bin/ssh`.
pub fn shim_dir() -> PathBuf {
    dock::registry_dir().join(".dockerutils").join("bin")
}

/// Makes sure the shim is a link to this binary.
pub fn ensure_shim() -> std::io::Result<PathBuf> {
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
pub fn to_dock(dock: &Dock, tty: bool, remote: &[String]) -> Invocation {
    let mut inv = Invocation::new(
        "ssh",
        std::env::current_dir().unwrap_or_else(|_| "/".into()),
    )
    .args(dock.ssh_options());
    if tty {
        inv = inv.arg("-t");
    }
    inv.args(["-o", "LogLevel=error"])
        .arg(dock.destination())
        .args(remote.iter().map(String::as_str))
}

/// ssh options that take a value (the word after them is not the destination).
const WITH_VALUE: &str = "BbcDEeFIiJLlmOopQRSWw";

/// The destination host of an ssh command line (`user@host` or `host`), if any.
pub fn destination_host(args: &[OsString]) -> Option<String> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--" {
            return args.get(i + 1).map(|d| host_of(&d.to_string_lossy()));
        }
        if let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
            // `-p 22` takes the next word; `-p22` carries its value.
            if flags.len() == 1 && WITH_VALUE.contains(flags) {
                i += 1;
            }
        } else {
            return Some(host_of(&a));
        }
        i += 1;
    }
    None
}

fn host_of(dest: &str) -> String {
    let dest = dest.strip_prefix("ssh://").unwrap_or(dest);
    let host = dest.rsplit_once('@').map_or(dest, |(_, h)| h);
    host.split(':').next().unwrap_or(host).to_string()
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
pub fn shim_main(argv: Vec<OsString>) -> i32 {
    let args = &argv[1..];
    let Some(ssh) = real_ssh(&shim_dir()) else {
        eprintln!("dockerutils ssh shim: no ssh found on PATH (install openssh-client)");
        return 127;
    };
    let mut cmd = std::process::Command::new(&ssh);
    if let (Some(host), Some(current)) = (destination_host(args), dock::current()) {
        if host == current.ip || host == current.hostname {
            cmd.args(current.ssh_options());
        }
    }
    let err = cmd.args(args).exec();
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
