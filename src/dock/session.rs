//! The SSH the tool itself does on a dock (not the docker CLI's, which the shim serves),
//! through the `openssh` crate: a command's arguments go through its `arg()`, escaped
//! for the remote shell one by one, never joined into a string the shell would parse.
//!
//! [`Session::shared`] rides the dock's shared connection (the control master every ssh
//! to the dock uses, `Dock::ssh_options`): it makes sure the master runs, asks ssh where
//! its socket is, and resumes it, so a command costs a channel, not a handshake.
//! [`Session::fresh`] is a connection of its own that ends with the value (register-dock's
//! probe: the address may be a new machine whose key must not be learned yet).
//!
//! Plan steps that run on a dock (sync-up's mkdir, run-image's mount check) stay `ssh`
//! invocations over the same master: `--dry-run` prints them as commands a user can copy.

use super::Dock;
use crate::error::{Error, Result};
use openssh::{KnownHosts, SessionBuilder, Stdio};
use std::path::PathBuf;
use std::time::Duration;

/// What a remote command did.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Its exit code; `None` when ssh itself failed (the connection ended).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A connection to a dock and the runtime its calls block on.
pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    /// `None` once closed.
    session: Option<openssh::Session>,
    name: String,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))
}

impl Session {
    /// The dock's shared connection, started if it is not running.
    pub(crate) fn shared(dock: &Dock) -> Result<Session> {
        let ctl = control_socket(dock)?;
        // `-O check` asks the master without connecting; when none answers, any ssh with
        // the dock's options starts one that outlives it (ControlPersist).
        let check = crate::process::output(
            crate::process::Command::new("ssh")
                .args(dock.ssh_options())
                .args(["-O", "check", "--"])
                .arg(dock.destination()),
        )
        .map_err(|e| Error::spawn("ssh", e))?;
        if !check.status.success() {
            let start = crate::process::output(
                crate::process::Command::new("ssh")
                    .args(dock.ssh_options())
                    .args(["-o", "LogLevel=error", "--"])
                    .arg(dock.destination())
                    .arg("true"),
            )
            .map_err(|e| Error::spawn("ssh", e))?;
            if !start.status.success() {
                return Err(Error::Remote(format!(
                    "cannot reach dock {} over ssh: {}",
                    dock.name(),
                    String::from_utf8_lossy(&start.stderr).trim()
                )));
            }
        }
        Ok(Session {
            runtime: runtime()?,
            session: Some(openssh::Session::resume(ctl.into_boxed_path(), None)),
            name: dock.name().to_string(),
        })
    }

    /// A connection of its own to `dock`'s address as its user (with its identity), that
    /// learns no host key and closes when dropped (or [`close`](Session::close)d).
    pub(crate) fn fresh(dock: &Dock, connect_timeout: Duration) -> Result<Session> {
        let runtime = runtime()?;
        let mut builder = SessionBuilder::default();
        builder
            .user(dock.user.clone())
            .known_hosts_check(KnownHosts::Accept)
            .user_known_hosts_file("/dev/null")
            .connect_timeout(connect_timeout)
            .control_directory(control_dir());
        if let Some(identity) = dock.identity() {
            builder.keyfile(identity);
        }
        let host = dock.ip.clone();
        let session = runtime
            .block_on(builder.connect(&host))
            .map_err(|e| Error::Remote(connect_error(&e)))?;
        Ok(Session {
            runtime,
            session: Some(session),
            name: dock.name().to_string(),
        })
    }

    /// Runs `program` with `args` on the dock (each argument one word there, whatever
    /// it holds), stdin closed, its output captured.
    pub(crate) fn run(&self, program: &str, args: &[&str]) -> Result<Ran> {
        let session = self.session.as_ref().expect("an open session");
        let out = self.runtime.block_on(async {
            session
                .command(program)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .await
        });
        match out {
            Ok(o) => Ok(Ran {
                // ssh's own 255 (the connection failed) is not the command's.
                code: o.status.code().filter(|c| *c != 255),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
            }),
            Err(e) => Err(Error::Remote(format!(
                "ssh to dock {}: {}",
                self.name,
                connect_error(&e)
            ))),
        }
    }

    /// A shell script run by the dock user's login shell (`sh -lc SCRIPT`), the script
    /// one argument.
    pub(crate) fn script(&self, script: &str) -> Result<Ran> {
        self.run("sh", &["-lc", script])
    }

    /// Ends a connection of its own (a shared one is left to its master).
    pub(crate) fn close(mut self) {
        if let Some(session) = self.session.take() {
            let _ = self.runtime.block_on(session.close());
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A fresh session's master is ended by openssh when its value drops; a resumed
        // one is not (the dock's master stays for the next command).
        if let Some(session) = self.session.take() {
            drop(session);
        }
    }
}

/// The words of an openssh error and its causes (the master's log, when it kept one).
fn connect_error(e: &openssh::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !more.trim().is_empty() {
            text.push_str(": ");
            text.push_str(more.trim());
        }
        source = s.source();
    }
    text
}

/// Where fresh sessions keep their master's socket: a 0700 directory of ours (openssh's
/// default is the current directory).
fn control_dir() -> PathBuf {
    let dir = super::registry_dir().join(".dockerutils");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The path of the dock's control socket, as ssh expands its options (`%C`, `~`).
fn control_socket(dock: &Dock) -> Result<PathBuf> {
    let out = crate::process::output(
        crate::process::Command::new("ssh")
            .arg("-G")
            .args(dock.ssh_options())
            .arg("--")
            .arg(dock.destination()),
    )
    .map_err(|e| Error::spawn("ssh", e))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("controlpath "))
        .filter(|p| *p != "none")
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::Remote(format!(
                "dock {}: ssh gives its connection no control socket (`ssh -G` says none)",
                dock.name()
            ))
        })
}
