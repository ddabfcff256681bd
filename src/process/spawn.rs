//! Starting a child the way `posix_spawn` does (a `clone` that shares our memory and
//! suspends us until the child has exec'd), with the one thing `posix_spawn` cannot do:
//! the child sets its parent-death signal before it execs.
//!
//! Why not std: std starts a child with `posix_spawn` unless a `pre_exec` hook is given,
//! and then falls back to a full `fork`, which copies our page tables (a 22 MB binary
//! with its relocated data) and costs ~0.6 ms per child: more than half of what
//! `build-image` takes against a docker that does nothing (BENCHMARKS.md, "Start-up").
//! What std gives that we need is kept: pipes come back as std's `ChildStdin`/
//! `ChildStdout`/`ChildStderr`, statuses as std's `ExitStatus`, signal dispositions and
//! the signal mask are reset in the child (std ignores SIGPIPE; our handlers must not run
//! there), a PATH search like `execvp`'s (with the command's own PATH if it sets one),
//! and a script without `#!` is run by `/bin/sh`.
//!
//! Between `clone` and `execve` the child runs on a stack of its own in our memory, with
//! every signal blocked: it only makes raw system calls, allocates nothing and takes no
//! lock (what it needs is prepared by the parent), and reports a failure through a shared
//! atomic before it exits 127.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};
use std::sync::atomic::{AtomicI32, Ordering};

/// Where a child's stdin, stdout or stderr goes.
#[derive(Debug)]
pub(crate) enum Stdio {
    /// Ours.
    Inherit,
    /// `/dev/null`.
    Null,
    /// A pipe whose other end the caller gets (`Child::stdin` …).
    Piped,
    /// This file, pipe or socket.
    Fd(OwnedFd),
}

impl Stdio {
    pub(crate) fn null() -> Stdio {
        Stdio::Null
    }
    pub(crate) fn piped() -> Stdio {
        Stdio::Piped
    }
}

impl<T: Into<OwnedFd>> From<T> for Stdio {
    fn from(fd: T) -> Stdio {
        Stdio::Fd(fd.into())
    }
}

impl Stdio {
    /// The same for std's spawn (what outlives us, and exec).
    pub(crate) fn into_std(self) -> std::process::Stdio {
        match self {
            Stdio::Inherit => std::process::Stdio::inherit(),
            Stdio::Null => std::process::Stdio::null(),
            Stdio::Piped => std::process::Stdio::piped(),
            Stdio::Fd(fd) => std::process::Stdio::from(fd),
        }
    }
}

/// A program to start: std's builder for program, arguments, environment and directory
/// (read back through its getters), and the stdio and process group, which std keeps
/// to itself.
#[derive(Debug)]
pub(crate) struct Command {
    pub(super) std: std::process::Command,
    pub(super) stdio: [Option<Stdio>; 3],
    pub(super) pgroup: bool,
    /// The program's argv[0], when it is not the program as given.
    pub(super) arg0: Option<OsString>,
}

impl Command {
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            std: std::process::Command::new(program),
            stdio: [None, None, None],
            pgroup: false,
            arg0: None,
        }
    }
    /// The name the program sees itself called by (a multi-call binary's command).
    pub(crate) fn arg0(&mut self, arg0: impl AsRef<OsStr>) -> &mut Command {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }
    pub(crate) fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }
    pub(crate) fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }
    pub(crate) fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }
    pub(crate) fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }
    pub(crate) fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }
    pub(crate) fn stdin(&mut self, io: impl Into<Stdio>) -> &mut Command {
        self.stdio[0] = Some(io.into());
        self
    }
    pub(crate) fn stdout(&mut self, io: impl Into<Stdio>) -> &mut Command {
        self.stdio[1] = Some(io.into());
        self
    }
    pub(crate) fn stderr(&mut self, io: impl Into<Stdio>) -> &mut Command {
        self.stdio[2] = Some(io.into());
        self
    }
    /// A process group of its own (the only group std's `process_group(0)` was used for).
    pub(crate) fn own_process_group(&mut self) -> &mut Command {
        self.pgroup = true;
        self
    }

    /// std's command with the same stdio and group: for what is not ours to watch
    /// (spawned to outlive us) and for exec(2).
    pub(super) fn into_std(mut self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let [i, o, e] = std::mem::take(&mut self.stdio);
        if let Some(i) = i {
            self.std.stdin(i.into_std());
        }
        if let Some(o) = o {
            self.std.stdout(o.into_std());
        }
        if let Some(e) = e {
            self.std.stderr(e.into_std());
        }
        if self.pgroup {
            self.std.process_group(0);
        }
        if let Some(arg0) = &self.arg0 {
            self.std.arg0(arg0);
        }
        self.std
    }
}

/// A started child: its pid, the parent's ends of its pipes, and its status once reaped.
#[derive(Debug)]
pub(crate) struct Child {
    pid: libc::pid_t,
    status: Option<ExitStatus>,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

impl Child {
    pub(crate) fn id(&self) -> u32 {
        self.pid as u32
    }

    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = waitpid(self.pid, 0)?.expect("a blocking wait returns a status");
        self.status = Some(status);
        Ok(status)
    }

    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let status = waitpid(self.pid, libc::WNOHANG)?;
        self.status = status;
        Ok(status)
    }

    /// SIGKILL (nothing to do once it has been reaped: its pid may be another's now).
    pub(crate) fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // SAFETY: kill(2) of our child, not reaped yet.
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Closes its stdin, reads its stdout and stderr to their ends (both at once, so that
    /// neither pipe fills while the other is read) and waits for it.
    pub(crate) fn wait_with_output(mut self) -> io::Result<Output> {
        use std::io::Read;
        drop(self.stdin.take());
        let err = self.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                pipe.read_to_end(&mut buf).map(|_| buf)
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut pipe) = self.stdout.take() {
            pipe.read_to_end(&mut stdout)?;
        }
        let stderr = match err {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("the stderr reader panicked"))??,
            None => Vec::new(),
        };
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid(2) on our own child, with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What the child needs, prepared by the parent (the child may not allocate).
struct Plan {
    path: CString,
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh PATH ARGS…`, for a script without `#!` (ENOEXEC), as execvp does.
    sh_argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    cwd: Option<CString>,
    /// For fds 0, 1, 2: the descriptor to put there (-1: ours, as it is).
    fds: [RawFd; 3],
    pgroup: bool,
    parent: libc::pid_t,
    /// The highest signal number (libc's SIGRTMAX() is a call: made here).
    sigmax: libc::c_int,
    /// errno of the step that failed in the child (0: it exec'd).
    error: AtomicI32,
}

/// The bytes `argv` and `envp` point into.
struct Strings {
    _args: Vec<CString>,
    _env: Vec<CString>,
    _sh: CString,
}

/// Starts `command`: a child that gets SIGTERM when the thread that started it ends
/// (with `die_with_us`), in its own process group (with `pgroup`).
pub(super) fn spawn(command: Command, die_with_us: bool) -> io::Result<Child> {
    spawn_with(command, die_with_us, |_| {})
}

/// [`spawn`], calling `started` with the child's pid while signals are still blocked
/// (so that a signal that comes at once finds it in the caller's list).
pub(super) fn spawn_with(
    mut command: Command,
    die_with_us: bool,
    started: impl FnOnce(libc::pid_t),
) -> io::Result<Child> {
    // The parent's ends of the pipes, and the child's ends (closed here once it exec'd).
    let mut ours: [Option<OwnedFd>; 3] = [None, None, None];
    let mut theirs: [Option<OwnedFd>; 3] = [None, None, None];
    for (i, io) in std::mem::take(&mut command.stdio).into_iter().enumerate() {
        match io.unwrap_or(Stdio::Inherit) {
            Stdio::Inherit => {}
            Stdio::Null => {
                let flags = if i == 0 {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                };
                theirs[i] = Some(open_cloexec(c"/dev/null", flags)?);
            }
            Stdio::Piped => {
                let (read, write) = pipe()?;
                let (mine, child) = if i == 0 { (write, read) } else { (read, write) };
                ours[i] = Some(mine);
                theirs[i] = Some(child);
            }
            Stdio::Fd(fd) => theirs[i] = Some(fd),
        }
    }
    // A descriptor given to the child that is itself 0, 1 or 2 (ours were closed) would
    // be overwritten by the dup2 of an earlier one: move it above 2 first.
    for fd in theirs.iter_mut().flatten() {
        if fd.as_raw_fd() <= 2 {
            // SAFETY: fcntl(2) duplicating a descriptor we own.
            let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
            if high < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `high` is a new descriptor that nothing else owns.
            *fd = unsafe { OwnedFd::from_raw_fd(high) };
        }
    }

    let (mut plan, _strings) = prepare(&command, &theirs, die_with_us)?;
    let child = clone_and_exec(&mut plan, started)?;
    drop(theirs);
    let [i, o, e] = ours;
    Ok(Child {
        pid: child,
        status: None,
        stdin: i.map(ChildStdin::from),
        stdout: o.map(ChildStdout::from),
        stderr: e.map(ChildStderr::from),
    })
}

fn prepare(
    command: &Command,
    fds: &[Option<OwnedFd>; 3],
    die_with_us: bool,
) -> io::Result<(Plan, Strings)> {
    let cstring = |s: &OsStr| {
        CString::new(s.as_bytes()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a NUL byte in {:?}", s),
            )
        })
    };
    // The environment: ours, with the command's changes.
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (key, value) in command.std.get_envs() {
        env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            env.push((key.to_owned(), value.to_owned()));
        }
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    let program = command.std.get_program();
    let path = find_program(program, path_var.as_deref())?;
    let path = cstring(path.as_os_str())?;
    let mut args = vec![cstring(command.arg0.as_deref().unwrap_or(program))?];
    for a in command.std.get_args() {
        args.push(cstring(a)?);
    }
    let env: Vec<CString> = env
        .into_iter()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            cstring(OsStr::from_bytes(&kv))
        })
        .collect::<io::Result<_>>()?;
    let sh = c"/bin/sh".to_owned();
    let nul = std::ptr::null();
    let argv: Vec<_> = args.iter().map(|a| a.as_ptr()).chain([nul]).collect();
    let sh_argv: Vec<_> = [sh.as_ptr(), path.as_ptr()]
        .into_iter()
        .chain(args.iter().skip(1).map(|a| a.as_ptr()))
        .chain([nul])
        .collect();
    let envp: Vec<_> = env.iter().map(|e| e.as_ptr()).chain([nul]).collect();
    let cwd = command
        .std
        .get_current_dir()
        .map(|d| cstring(d.as_os_str()))
        .transpose()?;
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |fd| fd.as_raw_fd());
    let plan = Plan {
        path,
        argv,
        sh_argv,
        envp,
        cwd,
        fds: [raw(&fds[0]), raw(&fds[1]), raw(&fds[2])],
        pgroup: command.pgroup,
        parent: if die_with_us {
            // SAFETY: getpid(2) cannot fail.
            unsafe { libc::getpid() }
        } else {
            0
        },
        sigmax: libc::SIGRTMAX(),
        error: AtomicI32::new(0),
    };
    Ok((
        plan,
        Strings {
            _args: args,
            _env: env,
            _sh: sh,
        },
    ))
}

/// The file `program` names, searched for as `execvp` does: a name with a `/` is taken
/// as it is; else the first executable file of that name in PATH's directories (an empty
/// entry is the current directory; no PATH: `/bin:/usr/bin`).
fn find_program(program: &OsStr, path_var: Option<&OsStr>) -> io::Result<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    if program.is_empty() {
        return Err(io::ErrorKind::NotFound.into());
    }
    let path_var = path_var.unwrap_or(OsStr::new("/bin:/usr/bin"));
    let mut denied = false;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        let dir = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(program);
        let Ok(c) = CString::new(candidate.as_os_str().as_bytes()) else {
            continue;
        };
        // SAFETY: access(2) with a valid C string.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            if candidate.is_file() {
                return Ok(candidate);
            }
        } else if io::Error::last_os_error().raw_os_error() == Some(libc::EACCES) {
            denied = true;
        }
    }
    Err(if denied {
        io::ErrorKind::PermissionDenied.into()
    } else {
        io::ErrorKind::NotFound.into()
    })
}

fn open_cloexec(path: &std::ffi::CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: open(2) with a valid C string; the descriptor is owned from here.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2(2) with a valid two-int array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The child's stack: what it runs between clone and exec is a few calls deep.
const STACK: usize = 64 * 1024;

fn clone_and_exec(plan: &mut Plan, started: impl FnOnce(libc::pid_t)) -> io::Result<libc::pid_t> {
    // SAFETY: an anonymous private mapping, unmapped below.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Every signal blocked from before the clone until the child's pid is listed: the
    // child must not run our handlers (it shares our memory), and a signal that arrives
    // meanwhile is delivered once it can be passed on to the child.
    // SAFETY: sigset operations on local sets; pthread_sigmask on this thread.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the child runs `child_main` on its own stack (the top of the mapping, which
    // is 16-byte aligned), sharing our memory while we are suspended (CLONE_VFORK) until
    // it exec'd or exited; `plan` outlives that.
    let pid = unsafe {
        libc::clone(
            child_main,
            (stack as *mut u8).add(STACK) as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            plan as *mut Plan as *mut libc::c_void,
        )
    };
    let clone_error = io::Error::last_os_error();
    if pid > 0 {
        started(pid);
    }
    // SAFETY: restoring this thread's mask; unmapping the mapping made above, which the
    // child no longer uses (it exec'd or exited).
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        libc::munmap(stack, STACK);
    }
    if pid < 0 {
        return Err(clone_error);
    }
    match plan.error.load(Ordering::SeqCst) {
        0 => Ok(pid),
        errno => {
            // It exited 127: reap it, and say why.
            let _ = waitpid(pid, 0);
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The child, between clone and exec: raw system calls only.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Plan`, alive and unchanged while the parent is
    // suspended; every call below is a system call on values prepared by the parent.
    unsafe {
        let plan = &*(arg as *const Plan);
        let fail = || -> libc::c_int {
            plan.error
                .store(*libc::__errno_location(), Ordering::SeqCst);
            libc::_exit(127)
        };
        // Default dispositions for every signal that is caught here (our handlers live
        // in the memory the child shares) and for SIGPIPE (std ignores it); ignored
        // ones stay ignored, as across exec. Then the mask a new program expects: empty.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=plan.sigmax {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut now: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut now) != 0 {
                continue;
            }
            let caught = now.sa_sigaction != libc::SIG_IGN && now.sa_sigaction != libc::SIG_DFL;
            if caught || (sig == libc::SIGPIPE && now.sa_sigaction != libc::SIG_DFL) {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        if plan.pgroup && libc::setpgid(0, 0) != 0 {
            return fail();
        }
        for (target, &fd) in plan.fds.iter().enumerate() {
            // Each was moved above 2 by the parent: dup2 leaves it open without
            // close-on-exec at `target`, and the original closes at exec.
            if fd >= 0 && libc::dup2(fd, target as libc::c_int) < 0 {
                return fail();
            }
        }
        if let Some(cwd) = &plan.cwd
            && libc::chdir(cwd.as_ptr()) != 0
        {
            return fail();
        }
        if plan.parent != 0 {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                return fail();
            }
            // The parent died before the prctl: the signal would never come.
            if libc::getppid() != plan.parent {
                libc::_exit(128 + libc::SIGTERM);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(plan.path.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
        if *libc::__errno_location() == libc::ENOEXEC {
            libc::execve(
                c"/bin/sh".as_ptr(),
                plan.sh_argv.as_ptr(),
                plan.envp.as_ptr(),
            );
        }
        fail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn run(mut command: Command) -> Output {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        spawn(command, true).unwrap().wait_with_output().unwrap()
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    #[test]
    fn arguments_environment_directory_and_both_pipes_reach_the_program() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "pwd; echo \"$1|$A|${HOME-unset}\"; cat; echo err >&2; exit 3",
        ])
        .arg("sh")
        .arg("a b; $(x)")
        .env("A", "é")
        .env_remove("HOME")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = spawn(c, true).unwrap();
        child.stdin.take().unwrap().write_all(b"in\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let pwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            (out.status.code(), text(&out.stdout), text(&out.stderr)),
            (
                Some(3),
                format!("{}\na b; $(x)|é|unset\nin\n", pwd.display()),
                "err\n".to_string()
            )
        );
    }

    #[test]
    fn a_file_can_be_the_output_and_null_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("out")).unwrap();
        let mut c = Command::new("sh");
        c.args(["-c", "cat; echo done"])
            .stdin(Stdio::null())
            .stdout(file);
        let status = spawn(c, true).unwrap().wait().unwrap();
        assert!(status.success());
        let mut s = String::new();
        std::fs::File::open(dir.path().join("out"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "done\n");
    }

    #[test]
    fn the_program_is_searched_in_the_commands_own_path_and_missing_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        // No `#!`: run by /bin/sh, as execvp does.
        let tool = dir.path().join("du-spawn-tool");
        std::fs::write(&tool, "echo found \"$@\"\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut c = Command::new("du-spawn-tool");
        c.arg("x y").env("PATH", dir.path());
        let out = run(c);
        assert_eq!(text(&out.stdout), "found x y\n", "{}", text(&out.stderr));
        let err = spawn(Command::new("du-spawn-tool"), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = spawn(Command::new(dir.path().join("absent")), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let mut c = Command::new("sh");
        c.current_dir(dir.path().join("absent"));
        assert_eq!(spawn(c, true).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    /// std ignores SIGPIPE and signal_hook catches our signals: the child starts as a new
    /// program expects, with neither, and no signal blocked.
    #[test]
    fn the_child_starts_with_default_signals_and_an_empty_mask() {
        crate::process::install_signal_handlers();
        // cat catches nothing itself (grep catches SIGSEGV).
        let mut c = Command::new("cat");
        c.arg("/proc/self/status");
        let out = text(&run(c).stdout);
        let mask = |name: &str| {
            let line = out.lines().find(|l| l.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        assert_eq!(mask("SigBlk:"), 0, "{out}");
        assert_eq!(mask("SigIgn:") & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
        assert_eq!(mask("SigCgt:"), 0, "{out}");
    }

    #[test]
    fn the_child_gets_sigterm_when_the_thread_that_started_it_ends_and_not_without() {
        let started = |die_with_us| {
            std::thread::spawn(move || {
                let mut c = Command::new("sleep");
                c.arg("30");
                spawn(c, die_with_us)
            })
            .join()
            .unwrap()
            .unwrap()
        };
        let mut dies = started(true);
        let status = dies.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
        let mut lives = started(false);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(lives.try_wait().unwrap(), None);
        lives.kill().unwrap();
        assert_eq!(lives.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn its_own_process_group_when_asked() {
        let group = |own: bool| {
            let mut c = Command::new("sh");
            c.args(["-c", "ps -o pgid= -p $$"]);
            if own {
                c.own_process_group();
            }
            c.stdout(Stdio::piped());
            let child = spawn(c, true).unwrap();
            let pid = child.id();
            let out = child.wait_with_output().unwrap();
            (pid, text(&out.stdout).trim().parse::<u32>().unwrap())
        };
        let (pid, pgid) = group(true);
        assert_eq!(pgid, pid);
        // SAFETY: getpgrp(2) cannot fail.
        let ours = unsafe { libc::getpgrp() } as u32;
        assert_eq!(group(false).1, ours);
    }
}
