//! The one place that runs a plan.
//!
//! - Each command line is printed (secrets masked) on stderr before it runs, so stdout
//!   stays the program's own.
//! - The exit code of the failing step is the plan's exit code (128+N for a signal).
//! - Ctrl-C at a terminal reaches docker directly (same process group); we survive it,
//!   let docker finish, and run the cleanup. A signal sent to us alone (`kill`, cron, a
//!   supervisor) is passed on to the running step.

use crate::plan::{Invocation, OnFailure, Plan, Step};
use std::io::IsTerminal;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Exit code for a plan interrupted between steps.
const INTERRUPTED: i32 = 130;

/// pid of the running step, 0 when none.
static CHILD: AtomicI32 = AtomicI32::new(0);
static INTERRUPTED_FLAG: AtomicBool = AtomicBool::new(false);

/// si_code of signals the kernel sends on a terminal's behalf (Ctrl-C, Ctrl-\, hangup).
const SI_KERNEL: i32 = 0x80;

/// Handlers (no thread: they only set a flag and call kill(2), both async-signal-safe)
/// for SIGINT, SIGTERM, SIGHUP and SIGQUIT. A terminal's signal already reached the
/// child (same process group); one sent to us alone is passed on to it.
pub fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: the action only touches atomics and calls kill(2).
        let _ = unsafe {
            signal_hook_registry::register_sigaction(signal, move |info: &libc::siginfo_t| {
                INTERRUPTED_FLAG.store(true, Ordering::SeqCst);
                let pid = CHILD.load(Ordering::SeqCst);
                if pid > 0 && info.si_code != SI_KERNEL {
                    libc::kill(pid, signal);
                }
            })
        };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED_FLAG.load(Ordering::SeqCst)
}

fn exit_code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Prints a command line the user can copy, bold on a terminal.
fn announce(text: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("\x1b[1m{text}\x1b[0m");
    } else {
        eprintln!("{text}");
    }
}

/// Runs the plan and returns the exit code.
pub fn execute(prog: &str, plan: &Plan) -> i32 {
    install_signal_handlers();
    let mut rc = 0;
    for step in &plan.steps {
        if interrupted() {
            rc = if rc == 0 { INTERRUPTED } else { rc };
            break;
        }
        match run_step(prog, step) {
            StepResult::Ok => {}
            StepResult::Noted(code) => {
                if rc == 0 {
                    rc = code;
                }
            }
            StepResult::Stop(code) => {
                rc = code;
                break;
            }
        }
    }
    for step in &plan.cleanup {
        if let StepResult::Stop(code) | StepResult::Noted(code) = run_step(prog, step) {
            if rc == 0 {
                rc = code;
            }
        }
    }
    rc
}

enum StepResult {
    Ok,
    /// Failed, but the plan goes on; the code is the plan's unless an earlier one is.
    Noted(i32),
    Stop(i32),
}

fn run_step(prog: &str, step: &Step) -> StepResult {
    match step {
        Step::Say(text) => {
            eprintln!("{text}");
            StepResult::Ok
        }
        Step::Copy { from, to } => match std::fs::copy(from, to) {
            Ok(_) => StepResult::Ok,
            Err(e) => {
                eprintln!(
                    "{prog}: error: cannot copy {} to {}: {e}",
                    from.display(),
                    to.display()
                );
                StepResult::Stop(1)
            }
        },
        Step::Remove { path } => match std::fs::remove_file(path) {
            Ok(()) => StepResult::Ok,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StepResult::Ok,
            Err(e) => {
                eprintln!("{prog}: error: cannot remove {}: {e}", path.display());
                StepResult::Noted(1)
            }
        },
        Step::Run(inv) => run_invocation(prog, inv),
    }
}

fn run_invocation(prog: &str, inv: &Invocation) -> StepResult {
    if let Some(note) = &inv.note {
        eprintln!("{note}");
    }
    announce(&inv.display());
    // std spawns with posix_spawn (vfork) unless a directory is set: set it only when it
    // differs. (duct always forks; it is kept for pipelines.)
    let mut command = std::process::Command::new(&inv.program);
    command.args(inv.argv());
    if std::env::current_dir().ok().as_deref() != Some(inv.cwd.as_path()) {
        command.current_dir(&inv.cwd);
    }
    for var in &inv.env {
        command.env(&var.name, &var.value);
    }
    if inv.stdin.is_some() {
        command.stdin(std::process::Stdio::piped());
    }
    let capture = inv.on_failure == OnFailure::MissingImageIsFine;
    if capture {
        command.stderr(std::process::Stdio::piped());
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let err = if e.kind() == std::io::ErrorKind::NotFound {
                crate::error::Error::ProgramMissing {
                    program: inv.program.clone(),
                }
            } else {
                crate::error::Error::io(format!("cannot start {}", inv.program), e)
            };
            crate::error::report(prog, &err);
            return StepResult::Stop(err.exit_code());
        }
    };
    let mut child = child;
    if let (Some(input), Some(mut pipe)) = (&inv.stdin, child.stdin.take()) {
        use std::io::Write;
        // A short text (a password): it fits the pipe; a program that exits without
        // reading it is reported by its exit code, not by this write.
        let _ = pipe.write_all(input.value.as_bytes());
    }
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    let waited = child
        .wait_with_output()
        .map(|out| (exit_code(&out.status), out.stderr));
    CHILD.store(0, Ordering::SeqCst);
    let (code, stderr) = match waited {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{prog}: error: waiting for {}: {e}", inv.program);
            return StepResult::Stop(1);
        }
    };
    if code == 0 {
        return StepResult::Ok;
    }
    let stderr = String::from_utf8_lossy(&stderr);
    if capture && stderr.contains("No such image") {
        let image = inv.args.last().map(|a| a.value.as_str()).unwrap_or("");
        eprintln!("{image} is not present (nothing to remove)");
        return StepResult::Ok;
    }
    eprint!("{stderr}");
    if inv.is_docker && !interrupted() {
        if let Some(hint) = crate::docker::diagnose(code) {
            eprintln!("{prog}: hint: {hint}");
        }
    }
    match inv.on_failure {
        OnFailure::Stop => StepResult::Stop(code),
        OnFailure::MissingImageIsFine => StepResult::Noted(code),
    }
}
