//! The one door to child processes. Every program the tool starts (docker, git, rsync,
//! ssh, zstd's peers, user scripts) is started here, so the same rules hold for all:
//!
//! - The child gets SIGTERM when this process dies, whatever kills it (`kill -9`
//!   included): no docker CLI outlives the command that started it. For `docker run`,
//!   docker's signal proxy passes the SIGTERM to the container, which then stops (`--rm`
//!   removes it) instead of running to its end with its output going nowhere; a `docker
//!   build`, `rsync` or `pre_build_script` whose command was killed has no one to report
//!   to either. Linux sends it when the *thread* that started the child ends: the plan
//!   runner waits for its child on the thread that started it (`build-image -j` runs each
//!   build's plan on its own thread, start to end), so that thread outlives the child.
//!   std cannot start a child so without a full `fork`: [`spawn`](mod@spawn) does
//!   (`Command` and `Stdio` here are its, in std's shape).
//! - A signal sent to us alone (`kill`, cron, a supervisor) is passed on to every running
//!   child of our process group, however many (`build-image -j` runs several); a
//!   terminal's signal (Ctrl-C) has reached them already, as it reached us.
//! - A child started in a process group of its own ([`bounded`]: docker calls a deploy
//!   makes, probes) gets no terminal signal: the caller decides what a Ctrl-C means, and
//!   kills the whole group when its time is up.
//! - A planned [`Invocation`] becomes a command one way ([`command`]: program, argv,
//!   working directory, environment), whoever runs it.
//!
//! Three shapes: [`spawn`] (the caller streams the pipes, then waits on [`Running`]),
//! [`run`] / [`output`] (wait for the status, or the captured output), and [`bounded`]
//! (captured, within a time limit). [`spawn_in_own_group`] and [`spawn_detached`] start
//! what the caller ends itself, or what outlives us; [`replace`] is exec(2), for the ssh
//! shim.

mod spawn;

pub(crate) use spawn::{Child, Command, Stdio};

use crate::plan::Invocation;
use std::io;
use std::ops::DerefMut;
use std::os::unix::process::CommandExt;
use std::process::{ExitStatus, Output};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// pids of the running children of our process group (0: a free slot). An array of
/// atomics, not a locked list: the signal handler reads it, and may not take a lock.
static RUNNING: [AtomicI32; 64] = [const { AtomicI32::new(0) }; 64];
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The first of those signals that arrived (0: none), for the exit code.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// si_code of signals the kernel sends on a terminal's behalf (Ctrl-C, Ctrl-\, hangup).
const SI_KERNEL: i32 = 0x80;

/// Handlers registered so far (one per signal, whatever the number of calls).
static HANDLERS: AtomicI32 = AtomicI32::new(0);

/// Handlers (no thread: they only set a flag and call kill(2), both async-signal-safe)
/// for SIGINT, SIGTERM, SIGHUP and SIGQUIT: the flag says we were interrupted, and a
/// signal sent to us alone is passed on to every running child. Installed once per
/// process: signal_hook_registry adds an action per call, and every plan, build and EC2
/// wait poll calls this, so a second install would send one signal several times.
pub(crate) fn install_signal_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(register_handlers);
}

fn register_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        HANDLERS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the action only touches atomics and calls kill(2).
        let _ = unsafe {
            signal_hook_registry::register_sigaction(signal, move |info: &libc::siginfo_t| {
                INTERRUPTED.store(true, Ordering::SeqCst);
                let _ = SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                if info.si_code == SI_KERNEL {
                    return;
                }
                for slot in &RUNNING {
                    let pid = slot.load(Ordering::SeqCst);
                    if pid > 0 {
                        libc::kill(pid, signal);
                    }
                }
            })
        };
    }
}

/// Did a SIGINT, SIGTERM, SIGHUP or SIGQUIT arrive since the handlers were installed?
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The exit code of a command that stops because it was interrupted: 128 + the signal,
/// as a shell reports a process killed by it (130 for Ctrl-C, 143 for SIGTERM); 130 when
/// no signal came (an interruption said otherwise).
pub(crate) fn interrupted_code() -> i32 {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => 130,
        signal => 128 + signal,
    }
}

/// The command of a planned invocation: its program, argv, environment and directory.
pub(crate) fn command(inv: &Invocation) -> Command {
    // The child changes directory only when it differs (a system call saved).
    let mut command = Command::new(&inv.program);
    command.args(inv.argv());
    if std::env::current_dir().ok().as_deref() != Some(inv.cwd.as_path()) {
        command.current_dir(&inv.cwd);
    }
    for var in &inv.env {
        command.env(&var.name, &var.value);
    }
    command
}

/// A running child. Waiting through it (not through the `Child` it derefs to, for the
/// pipes) takes it off the list that signals are passed on to.
pub(crate) struct Running {
    /// Always `Some` but inside `wait_with_output`, which takes it.
    child: Option<Child>,
    slot: Option<usize>,
}

impl Running {
    fn forget(&mut self) {
        if let Some(slot) = self.slot.take() {
            RUNNING[slot].store(0, Ordering::SeqCst);
        }
    }

    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.deref_mut().wait();
        self.forget();
        status
    }

    /// Kept though unused: it shadows std's `try_wait` (reached through `Deref`), which
    /// would leave the pid listed for signals after the child is reaped.
    #[allow(dead_code)]
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let status = self.deref_mut().try_wait();
        if !matches!(status, Ok(None)) {
            self.forget();
        }
        status
    }

    pub(crate) fn wait_with_output(mut self) -> io::Result<Output> {
        let child = self.child.take().expect("a running child");
        let out = child.wait_with_output();
        self.forget();
        out
    }

    /// SIGKILL, then reap it.
    pub(crate) fn kill(&mut self) {
        let _ = self.deref_mut().kill();
        let _ = self.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child.as_ref().expect("a running child")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("a running child")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.forget();
    }
}

/// Starts `command`: it dies with us, and signals sent to us are passed on to it.
pub(crate) fn spawn(command: &mut Command) -> io::Result<Running> {
    let mut slot = None;
    // Listed while signals are blocked: a signal that arrives at once reaches it too.
    let child = spawn::spawn_with(take(command), true, |pid| {
        slot = RUNNING.iter().position(|s| {
            s.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
    })?;
    Ok(Running {
        child: Some(child),
        slot,
    })
}

/// The command to start, leaving in its place an empty one (a `Command` is used once: its
/// stdio descriptors go to the child).
fn take(command: &mut Command) -> Command {
    std::mem::replace(command, Command::new(""))
}

/// Starts `command` in a process group of its own: it dies with us, but neither a
/// terminal's Ctrl-C nor a signal sent to us reaches it; the caller ends it (an ssh
/// tunnel that must outlive the container it serves until that has stopped).
pub(crate) fn spawn_in_own_group(command: &mut Command) -> io::Result<Running> {
    command.own_process_group();
    let child = spawn::spawn(take(command), true)?;
    Ok(Running {
        child: Some(child),
        slot: None,
    })
}

/// Starts `command` to outlive us: its own process group, no signal passed on, no death
/// signal (nb-dock's tunnel, which `nb-dock --stop` ends later; a browser). std's spawn
/// does that as well as ours: it is not ours to watch.
pub(crate) fn spawn_detached(command: &mut Command) -> io::Result<std::process::Child> {
    command.own_process_group();
    take(command).into_std().spawn()
}

/// Runs `command` with the stdio it was given (ours by default) and waits for it.
pub(crate) fn run(command: &mut Command) -> io::Result<ExitStatus> {
    spawn(command)?.wait()
}

/// Runs `command` with stdin closed, stdout and stderr captured.
pub(crate) fn output(command: &mut Command) -> io::Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn(command)?.wait_with_output()
}

/// Replaces this process with `command` (exec(2)); returns only when that fails.
pub(crate) fn replace(command: &mut Command) -> io::Error {
    take(command).into_std().exec()
}

/// How a bounded call ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It exited: its status and what it wrote to the pipes it was given.
    Exited(Output),
    /// It did not end within the bound: it was killed (with its process group).
    TimedOut(Duration),
    /// Ctrl-C (or a signal to us) arrived and the caller asked to abandon it: killed.
    Interrupted,
}

/// Runs `command` in a process group of its own, stdin closed, and waits at most `limit`;
/// then it is killed, its whole group (a hung docker CLI, an ssh it started for
/// `DOCKER_HOST=ssh://`), so that nothing it waits on can wedge the caller. Its own group:
/// a Ctrl-C at the terminal reaches us, not it, and the caller decides what it means;
/// with `abandon_on_interrupt` the call is killed then. Piped stdout/stderr are read
/// while it runs.
pub(crate) fn bounded(
    mut command: Command,
    limit: Duration,
    abandon_on_interrupt: bool,
) -> io::Result<Ended> {
    use std::io::Read;
    command.own_process_group().stdin(Stdio::null());
    let mut child = spawn::spawn(command, true)?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        pipe.map(|mut p| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = p.read_to_end(&mut buf);
                buf
            })
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = std::time::Instant::now();
    let kill = |child: &mut Child| {
        // SAFETY: kill(2) of the process group of our child, not yet reaped.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
    };
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= limit {
            kill(&mut child);
            return Ok(Ended::TimedOut(limit));
        }
        if abandon_on_interrupt && interrupted() {
            kill(&mut child);
            return Ok(Ended::Interrupted);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let collect = |t: Option<std::thread::JoinHandle<Vec<u8>>>| {
        t.and_then(|t| t.join().ok()).unwrap_or_default()
    };
    Ok(Ended::Exited(Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_handlers_are_installed_once() {
        for _ in 0..5 {
            install_signal_handlers();
        }
        assert_eq!(HANDLERS.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn running_children_are_listed_until_waited_for() {
        let listed = |pid: u32| {
            RUNNING
                .iter()
                .any(|s| s.load(Ordering::SeqCst) == pid as i32)
        };
        let mut a = spawn(Command::new("sleep").arg("5")).unwrap();
        let b = spawn(Command::new("sleep").arg("5")).unwrap();
        assert!(listed(a.id()) && listed(b.id()));
        a.kill();
        assert!(!listed(a.id()) && listed(b.id()));
        let pid = b.id();
        drop(b);
        assert!(!listed(pid));
        let out =
            output(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"])).unwrap();
        assert_eq!(
            (out.status.code(), &out.stdout[..], &out.stderr[..]),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn a_bounded_call_is_killed_with_its_group_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "sleep 30 & echo $! > '{}'; wait",
            pidfile.display()
        ));
        let ended = bounded(c, Duration::from_millis(500), false).unwrap();
        assert!(matches!(ended, Ended::TimedOut(_)), "{ended:?}");
        // The background sleep, in the same group, was killed too: gone, or a zombie
        // waiting for whoever reaps orphans here.
        let pid = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .to_string();
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat.contains(") Z "))
        };
        for _ in 0..50 {
            if !alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "the group's other process outlived the bound");
    }
}
