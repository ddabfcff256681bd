//! The SSH the tool itself does (not the docker CLI's, which the shim serves, nor the
//! user's own `ssh-dock` and rsync's transport), through the `openssh` crate's native
//! multiplexing: a command is a channel of a control master, opened by speaking ssh's mux
//! protocol on the master's socket, its stdio file descriptors handed to the master. No
//! ssh process runs per command, so none is left for a terminal's Ctrl-C to kill early or
//! for us to forget: an interrupted stream is cut by shutting down our end of its socket.
//! Arguments go through openssh's `arg()`, escaped for the remote shell one by one; a
//! pipeline is one `sh -c SCRIPT` whose words `plan::quote` quoted.
//!
//! [`Mux::connect`] rides the master of `ssh OPTIONS -- DEST`: a registered dock's shared
//! one (`Dock::ssh_options`: the same that `ssh gpu-box`, the shim and `ssh-dock` use), or,
//! for a plain `[user@]host[:port]` ([`plain_host_options`]), one in this home's socket
//! directory that the value ends when it drops (`-O exit`; ssh's ControlPersist ends it a
//! minute later should we die first). A master that does not answer is started by an
//! `ssh … true` through `crate::process` (ssh keeps it in the background: ControlPersist).
//! A remote command's stderr is passed on to ours until it is cut off. [`OwnTunnel`]: the
//! notebook tunnels' masters of their own, their forwards asked through openssh.
//! [`Session`] wraps a `Mux` for register-dock and nb-dock; [`Session::fresh`] is
//! register-dock's connection of its own (it must not learn a host key yet), which
//! openssh starts and ends.

use super::Dock;
use crate::error::{Error, Result};
use openssh::{KnownHosts, SessionBuilder, Stdio};
use std::future::Future;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What a remote command did.
#[derive(Debug)]
pub(crate) struct Ran {
    /// Its exit code; `None` when it ended without one (a signal there, or the
    /// connection ended).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// The runtime openssh's calls block on: one per thread, so that a remote child is
/// spawned and waited for on the thread that owns it (its mux connection belongs to the
/// runtime it was opened on) while other threads do the same with theirs.
fn block_on<F: Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|rt| rt.block_on(f))
}

/// The shell of a script: by its path, which does not depend on the remote user's PATH.
const SH: &str = "/bin/sh";

/// A remote reached through a control master, by native multiplexing.
pub(crate) struct Mux {
    session: Arc<openssh::Session>,
    name: String,
    /// `ssh OPTIONS … -- DEST` of a master this value started for a plain host: ended
    /// (`-O exit`) when the value drops, rather than left for its minute.
    exit_on_drop: Option<(Vec<String>, String)>,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mux({})", self.name)
    }
}

/// How a remote child's stdin or stdout is given.
pub(crate) enum Io {
    Null,
    /// Ours (its output goes where ours does).
    Inherit,
    /// A socket: the caller gets our end.
    Socket,
}

/// A command running on the remote.
pub(crate) struct RemoteChild {
    child: openssh::Child<Arc<openssh::Session>>,
    /// Our end of its stdin socket (`Io::Socket`).
    pub stdin: Option<UnixStream>,
    /// Our end of its stdout socket.
    pub stdout: Option<UnixStream>,
    cut: Cut,
    /// The thread that passes its stderr on to ours.
    stderr: Option<std::thread::JoinHandle<()>>,
}

/// Our ends of a remote child's sockets, held apart from the streams the caller reads
/// and writes (cloneable, for the thread that watches for Ctrl-C). The master holds the
/// other ends: a socket is closed for it only by `shutdown`, never by dropping one copy.
#[derive(Clone)]
pub(crate) struct Cut(Arc<Ends>);

struct Ends {
    stdin: Option<UnixStream>,
    stdout: Option<UnixStream>,
    stderr: UnixStream,
    cut: std::sync::atomic::AtomicBool,
}

impl Cut {
    /// Cuts it off: it reads the end of its input, its writes fail, and every read or
    /// write of ours on them returns at once. What it says from then on is not shown:
    /// only the other side noticing the cut (`unexpected EOF`), which would read as a
    /// fault of its own.
    pub(crate) fn cut(&self) {
        self.0.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for end in [&self.0.stdin, &self.0.stdout].into_iter().flatten() {
            let _ = end.shutdown(std::net::Shutdown::Both);
        }
        let _ = self.0.stderr.shutdown(std::net::Shutdown::Both);
    }

    /// Ends its input (it reads the end of it), once everything was written.
    pub(crate) fn end_input(&self) -> io::Result<()> {
        match &self.0.stdin {
            Some(stdin) => stdin.shutdown(std::net::Shutdown::Write),
            None => Ok(()),
        }
    }
}

/// Passes what a remote child writes on stderr to ours, as it comes, until it was cut off
/// or we were interrupted.
fn pass_stderr(mut from: UnixStream, ends: Arc<Ends>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if !ends.cut.load(std::sync::atomic::Ordering::SeqCst)
                        && !crate::process::interrupted()
                    {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    })
}

impl RemoteChild {
    pub(crate) fn cutter(&self) -> Cut {
        self.cut.clone()
    }

    /// Waits for it to end (and for what it said on stderr to be passed on): its exit
    /// code, or `None` when it ended without one (killed by a signal there, or the
    /// connection went).
    pub(crate) fn wait(mut self) -> io::Result<Option<i32>> {
        let status = block_on(self.child.wait());
        if let Some(thread) = self.stderr.take() {
            let _ = thread.join();
        }
        match status {
            Ok(status) => Ok(status.code()),
            Err(openssh::Error::RemoteProcessTerminated) => Ok(None),
            // openssh reads exit code 127 as "not found"; it is still a code.
            Err(openssh::Error::Remote(e)) if e.kind() == io::ErrorKind::NotFound => Ok(Some(127)),
            Err(e) => Err(io::Error::other(connect_error(&e))),
        }
    }
}

impl Mux {
    /// Rides the control master of `ssh OPTIONS -- DEST` (`name`: what messages call the
    /// remote), starting it if none answers; at most `limit` for that (ssh's own
    /// ConnectTimeout otherwise). `own`: the options are [`plain_host_options`]' (a plain
    /// host): a master this value starts, it ends when it drops. Options that name no
    /// control socket get those.
    pub(crate) fn connect(
        options: &[String],
        dest: &str,
        name: &str,
        limit: Option<Duration>,
        own: bool,
    ) -> Result<Mux> {
        let mut options = options.to_vec();
        let named = options.iter().any(|o| o.starts_with("ControlPath="));
        if !named {
            options.extend(plain_host_options()?);
        }
        let plain = own || !named;
        let ssh = |extra: &[&str], command: Option<&str>| {
            let mut cmd = crate::process::Command::new("ssh");
            cmd.args(&options).args(extra).arg("--").arg(dest);
            cmd.args(command);
            cmd
        };
        let ctl = control_socket(
            &crate::process::output(&mut ssh(&["-G"], None)).map_err(|e| Error::spawn("ssh", e))?,
        )
        .ok_or_else(|| {
            Error::Remote(format!(
                "{name}: ssh gives its connection no control socket (`ssh -G` says none)"
            ))
        })?;
        // `-O check` asks the master without connecting; when none answers, any ssh with
        // these options starts one that outlives it (ControlPersist).
        let check = crate::process::output(&mut ssh(&["-O", "check"], None))
            .map_err(|e| Error::spawn("ssh", e))?;
        let started = !check.status.success();
        let interrupted = |name: &str| Error::Interrupted(format!("connecting to {name}"));
        if started {
            let start = ssh(&["-o", "LogLevel=error"], Some("true"));
            let out = match limit {
                None => {
                    let mut start = start;
                    crate::process::output(start.stdin(crate::process::Stdio::null()))
                        .map_err(|e| Error::spawn("ssh", e))?
                }
                Some(limit) => match crate::process::bounded(start, limit, true)
                    .map_err(|e| Error::spawn("ssh", e))?
                {
                    crate::process::Ended::Exited(out) => out,
                    crate::process::Ended::TimedOut(after) => {
                        return Err(Error::Remote(format!(
                            "cannot reach {name} over ssh: no answer in {}s",
                            after.as_secs()
                        )));
                    }
                    crate::process::Ended::Interrupted => return Err(interrupted(name)),
                },
            };
            if !out.status.success() {
                // A Ctrl-C reaches the ssh too (our process group): it ends saying nothing.
                if crate::process::interrupted() {
                    return Err(interrupted(name));
                }
                let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
                return Err(Error::Remote(format!(
                    "cannot reach {name} over ssh: {}",
                    if said.is_empty() {
                        format!("ssh ended ({}) without a word", out.status)
                    } else {
                        said
                    }
                )));
            }
        }
        Ok(Mux {
            session: Arc::new(openssh::Session::resume_mux(ctl.into_boxed_path(), None)),
            name: name.to_string(),
            exit_on_drop: (plain && started).then(|| (options, dest.to_string())),
        })
    }

    /// Runs `program` with `args` there (each argument one word there, whatever it
    /// holds), stdin closed, its output captured.
    pub(crate) fn output(&self, program: &str, args: &[&str]) -> Result<Ran> {
        self.output_within(program, args, None)
    }

    /// `sh -c SCRIPT` there (the script one argument: its words are the caller's to
    /// quote), output captured.
    pub(crate) fn script_output(&self, script: &str) -> Result<Ran> {
        self.output(SH, &["-c", script])
    }

    /// [`Mux::script_output`], given up on after `limit` (the command may go on there:
    /// the mux protocol cannot stop it; it is one that ends by itself).
    pub(crate) fn script_output_within(&self, script: &str, limit: Duration) -> Result<Ran> {
        self.output_within(SH, &["-c", script], Some(limit))
    }

    fn output_within(&self, program: &str, args: &[&str], limit: Option<Duration>) -> Result<Ran> {
        let out = block_on(async {
            let mut command = self.session.command(program);
            let output = command.args(args).stdin(Stdio::null()).output();
            match limit {
                None => Some(output.await),
                Some(limit) => tokio::time::timeout(limit, output).await.ok(),
            }
        });
        match out {
            None => Err(Error::Remote(format!(
                "{}: no answer within {} s",
                self.name,
                limit.unwrap_or_default().as_secs()
            ))),
            Some(Ok(o)) => Ok(Ran {
                code: o.status.code(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
            }),
            // openssh reads exit code 127 as "not found"; it is still a code.
            Some(Err(openssh::Error::Remote(e))) if e.kind() == io::ErrorKind::NotFound => {
                Ok(Ran {
                    code: Some(127),
                    stdout: String::new(),
                    stderr: format!("{program}: not found there"),
                })
            }
            Some(Err(openssh::Error::RemoteProcessTerminated)) => Ok(Ran {
                code: None,
                stdout: String::new(),
                stderr: "the remote command ended without an exit code".into(),
            }),
            Some(Err(e)) => Err(Error::Remote(format!(
                "ssh to {}: {}",
                self.name,
                connect_error(&e)
            ))),
        }
    }

    /// Starts `sh -c SCRIPT` there with the given stdin and stdout (stderr: passed on to
    /// ours until it is cut off).
    pub(crate) fn spawn_script(&self, script: &str, stdin: Io, stdout: Io) -> Result<RemoteChild> {
        self.spawn(SH, &["-c", script], stdin, stdout)
    }

    /// Starts `program` with `args` there (each one word there), with the given stdin
    /// and stdout (stderr: passed on to ours until it is cut off).
    pub(crate) fn spawn(
        &self,
        program: &str,
        args: &[&str],
        stdin: Io,
        stdout: Io,
    ) -> Result<RemoteChild> {
        let give = |io: Io| -> Result<(Stdio, Option<UnixStream>, Option<UnixStream>)> {
            Ok(match io {
                Io::Null => (Stdio::null(), None, None),
                Io::Inherit => (Stdio::inherit(), None, None),
                Io::Socket => {
                    let (ours, theirs) =
                        UnixStream::pair().map_err(|e| Error::io("a socket pair", e))?;
                    let kept = ours.try_clone().map_err(|e| Error::io("a socket", e))?;
                    (
                        Stdio::from(std::os::fd::OwnedFd::from(theirs)),
                        Some(ours),
                        Some(kept),
                    )
                }
            })
        };
        let (stdin_io, stdin, stdin_kept) = give(stdin)?;
        let (stdout_io, stdout, stdout_kept) = give(stdout)?;
        let (stderr_io, stderr, stderr_kept) = give(Io::Socket)?;
        let child = block_on(async {
            openssh::Session::to_command(self.session.clone(), program)
                .args(args)
                .stdin(stdin_io)
                .stdout(stdout_io)
                .stderr(stderr_io)
                .spawn()
                .await
        })
        .map_err(|e| Error::Remote(format!("ssh to {}: {}", self.name, connect_error(&e))))?;
        let ends = Arc::new(Ends {
            stdin: stdin_kept,
            stdout: stdout_kept,
            stderr: stderr_kept.expect("a socket"),
            cut: std::sync::atomic::AtomicBool::new(false),
        });
        let stderr = stderr.map(|s| pass_stderr(s, ends.clone()));
        Ok(RemoteChild {
            child,
            stdin,
            stdout,
            cut: Cut(ends),
            stderr,
        })
    }

    /// Asks the master to forward `remote_port` on the remote's loopback to `local` here
    /// (`-R`) with `open`, or to cancel that forward.
    pub(crate) fn remote_forward(
        &self,
        open: bool,
        remote_port: u16,
        local: std::net::SocketAddr,
    ) -> Result<()> {
        let listen = openssh::Socket::new("127.0.0.1", remote_port);
        let connect = openssh::Socket::from(local);
        let kind = openssh::ForwardType::Remote;
        block_on(async {
            if open {
                self.session
                    .request_port_forward(kind, listen, connect)
                    .await
            } else {
                self.session.close_port_forward(kind, listen, connect).await
            }
        })
        .map_err(|e| Error::Remote(format!("ssh to {}: {}", self.name, connect_error(&e))))
    }
}

/// A tunnel that outlives the command (nb-dock's): a control master of its own, kept
/// until it is told to end (ControlPersist=yes), on the socket `ctl`, with a local forward
/// asked of it through openssh. Its own, not the dock's shared one, which ends 10 minutes
/// after its last session and would take the forward with it.
pub(crate) struct OwnTunnel;

impl OwnTunnel {
    /// Starts the master (`ssh` by `program`, the real one, not a docked shell's shim) and
    /// forwards 127.0.0.1:`local` here to 127.0.0.1:`remote` on the dock.
    pub(crate) fn open(
        program: &std::path::Path,
        options: &[String],
        dest: &str,
        name: &str,
        ctl: &std::path::Path,
        local: u16,
        remote: u16,
    ) -> Result<()> {
        let out = crate::process::output(
            crate::process::Command::new(program)
                .args(OwnTunnel::master_options(ctl, "yes")?)
                .args(options)
                .arg("--")
                .arg(dest)
                .arg("true")
                .stdin(crate::process::Stdio::null()),
        )
        .map_err(|e| Error::spawn("ssh", e))?;
        if !out.status.success() {
            return Err(Error::Remote(format!(
                "cannot reach {name} over ssh: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        if let Err(e) = OwnTunnel::forward(ctl, None, local, remote) {
            OwnTunnel::close(ctl);
            return Err(e);
        }
        Ok(())
    }

    /// The options that make an ssh the master of a tunnel on the socket `ctl`, kept
    /// after its last use as `persist` says (ControlPersist); ssh takes an option's first
    /// value, so they come before the dock's.
    pub(crate) fn master_options(ctl: &std::path::Path, persist: &str) -> Result<Vec<String>> {
        let spelled = super::ssh_config::path_word(ctl, "").ok_or_else(|| {
            Error::Remote(format!("{} cannot be a control socket", ctl.display()))
        })?;
        Ok([
            "ControlMaster=yes".to_string(),
            format!("ControlPath={spelled}"),
            format!("ControlPersist={persist}"),
            "LogLevel=error".to_string(),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect())
    }

    /// Asks the master on `ctl` to forward `bind:local` here (loopback without `bind`) to
    /// 127.0.0.1:`remote` on the remote.
    pub(crate) fn forward(
        ctl: &std::path::Path,
        bind: Option<&str>,
        local: u16,
        remote: u16,
    ) -> Result<()> {
        let session = openssh::Session::resume_mux(ctl.into(), None);
        block_on(session.request_port_forward(
            openssh::ForwardType::Local,
            openssh::Socket::new(bind.unwrap_or("127.0.0.1"), local),
            openssh::Socket::new("127.0.0.1", remote),
        ))
        .map_err(|e| {
            Error::Remote(format!(
                "the tunnel from localhost:{local} did not open: {}",
                connect_error(&e)
            ))
        })
    }

    /// Whether the master on `ctl` answers.
    pub(crate) fn alive(ctl: &std::path::Path) -> bool {
        ctl.exists() && block_on(openssh::Session::resume_mux(ctl.into(), None).check()).is_ok()
    }

    /// Ends the master on `ctl`, and with it the forward.
    pub(crate) fn close(ctl: &std::path::Path) {
        let _ = block_on(openssh::Session::resume_mux(ctl.into(), None).close());
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        if let Some((options, dest)) = self.exit_on_drop.take() {
            let _ = crate::process::output(
                crate::process::Command::new("ssh")
                    .args(&options)
                    .args(["-O", "exit", "--"])
                    .arg(&dest)
                    .stdin(crate::process::Stdio::null()),
            );
        }
    }
}

/// A connection to a dock: [`Mux`] for register-dock and nb-dock.
pub(crate) struct Session {
    mux: Mux,
}

impl Session {
    /// The dock's shared connection, started if it is not running.
    pub(crate) fn shared(dock: &Dock) -> Result<Session> {
        Ok(Session {
            mux: Mux::connect(
                &dock.ssh_options(),
                &dock.destination(),
                &format!("dock {}", dock.name()),
                None,
                false,
            )?,
        })
    }

    /// A connection of its own to `dock`'s address as its user (with its identity), that
    /// learns no host key and closes when dropped (or [`close`](Session::close)d).
    pub(crate) fn fresh(dock: &Dock, connect_timeout: Duration) -> Result<Session> {
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
        let session =
            block_on(builder.connect_mux(&host)).map_err(|e| Error::Remote(connect_error(&e)))?;
        Ok(Session {
            mux: Mux {
                session: Arc::new(session),
                name: format!("dock {}", dock.name()),
                exit_on_drop: None,
            },
        })
    }

    /// Runs `program` with `args` on the dock (each argument one word there, whatever
    /// it holds), stdin closed, its output captured.
    pub(crate) fn run(&self, program: &str, args: &[&str]) -> Result<Ran> {
        self.mux.output(program, args)
    }

    /// A shell script run by the dock user's login shell (`sh -lc SCRIPT`), the script
    /// one argument.
    pub(crate) fn script(&self, script: &str) -> Result<Ran> {
        self.run(SH, &["-lc", script])
    }

    /// Ends a connection of its own (a shared one is left to its master): openssh shuts
    /// down the master it started when its session drops.
    pub(crate) fn close(self) {
        drop(self);
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

/// The control socket `ssh -G`'s output names (ssh's expansion of `%C`, `~`), if any.
fn control_socket(out: &std::process::Output) -> Option<PathBuf> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("controlpath "))
        .filter(|p| *p != "none")
        .map(PathBuf::from)
}

/// A directory for control sockets when the home's is too long for a socket path:
/// `/tmp/dockerutils-<uid>/<hash of the home>` (0700, ours: refused otherwise).
pub(crate) fn short_socket_dir() -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    let top = PathBuf::from(format!("/tmp/dockerutils-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&top);
    let meta =
        std::fs::symlink_metadata(&top).map_err(|e| Error::io(top.display().to_string(), e))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Remote(format!(
            "{} is not a private directory of yours (for ssh's control sockets): remove it",
            top.display()
        )));
    }
    use sha2::Digest;
    let registry = super::registry_dir();
    let home = format!(
        "{:x}",
        sha2::Sha256::digest(registry.as_os_str().as_encoded_bytes())
    );
    let dir = top.join(&home[..12]);
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    Ok(dir)
}

/// Control options for a remote whose options name no socket (a plain host): a master in
/// the docks' socket directory of this home (`%C` hashes user, host and port; the home
/// keeps its known hosts and identities apart from another's), or, when that path is too
/// long for a socket, in `/tmp/dockerutils-<uid>/<hash of the home>` (0700, ours: refused
/// otherwise); kept a minute after its last use.
pub(crate) fn plain_host_options() -> Result<Vec<String>> {
    let registry = super::registry_dir();
    let in_home = super::control_dir(&registry);
    // `%C` as is: the directory's own `%` doubled, the token not (one socket per host).
    let spelled = super::control_path_in(&in_home)
        .and_then(|_| super::ssh_config::path_word(&in_home, "/%C"));
    let spelled = match spelled {
        Some(spelled) => spelled,
        None => format!("{}/%C", short_socket_dir()?.display()),
    };
    Ok([
        "ControlMaster=auto".to_string(),
        format!("ControlPath={spelled}"),
        "ControlPersist=60".to_string(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect())
}
