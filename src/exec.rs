//! The one place that runs a plan.
//!
//! - Each command line is printed (secrets masked) on stderr before it runs, so stdout
//!   stays the program's own.
//! - The exit code of the failing step is the plan's exit code (128+N for a signal).
//! - Ctrl-C at a terminal reaches docker directly (same process group); we survive it,
//!   let docker finish, and run the cleanup. A signal sent to us alone (`kill`, cron, a
//!   supervisor) is passed on to the running step.

use crate::plan::{Invocation, OnFailure, Plan, Step};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;
use std::io::IsTerminal;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Exit code for a plan interrupted between steps.
const INTERRUPTED: i32 = 130;

struct Signals {
    /// pid of the running child, 0 when none.
    child: Arc<AtomicI32>,
    interrupted: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Signals {
        let child = Arc::new(AtomicI32::new(0));
        let interrupted = Arc::new(AtomicBool::new(false));
        if let Ok(mut signals) = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        {
            let (child, interrupted) = (child.clone(), interrupted.clone());
            std::thread::spawn(move || {
                for origin in signals.forever() {
                    interrupted.store(true, Ordering::SeqCst);
                    let pid = child.load(Ordering::SeqCst);
                    // A terminal's Ctrl-C/Ctrl-\ already reached the child (same process
                    // group); only pass on what was sent to us alone.
                    let from_terminal = matches!(origin.cause, Cause::Kernel);
                    if pid > 0 && !from_terminal {
                        // SAFETY: kill(2) with a pid we spawned and a valid signal number.
                        unsafe {
                            libc::kill(pid, origin.signal);
                        }
                    }
                }
            });
        }
        Signals { child, interrupted }
    }
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
    let signals = Signals::install();
    let mut rc = 0;
    for step in &plan.steps {
        if signals.interrupted.load(Ordering::SeqCst) {
            rc = if rc == 0 { INTERRUPTED } else { rc };
            break;
        }
        match run_step(prog, step, &signals) {
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
        if let StepResult::Stop(code) | StepResult::Noted(code) = run_step(prog, step, &signals) {
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

fn run_step(prog: &str, step: &Step, signals: &Signals) -> StepResult {
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
        Step::Run(inv) => run_invocation(prog, inv, signals),
    }
}

fn run_invocation(prog: &str, inv: &Invocation, signals: &Signals) -> StepResult {
    if let Some(note) = &inv.note {
        eprintln!("{note}");
    }
    announce(&inv.display());
    let mut expr = duct::cmd(&inv.program, inv.argv())
        .dir(&inv.cwd)
        .unchecked();
    for var in &inv.env {
        expr = expr.env(&var.name, &var.value);
    }
    let capture = inv.on_failure == OnFailure::MissingImageIsFine;
    if capture {
        expr = expr.stderr_capture();
    }
    let handle = match expr.start() {
        Ok(h) => h,
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
    if let Some(pid) = handle.pids().first() {
        signals.child.store(*pid as i32, Ordering::SeqCst);
    }
    let waited = handle
        .wait()
        .map(|out| (exit_code(&out.status), out.stderr.clone()));
    signals.child.store(0, Ordering::SeqCst);
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
    if inv.is_docker && !signals.interrupted.load(Ordering::SeqCst) {
        if let Some(hint) = crate::docker::diagnose(code) {
            eprintln!("{prog}: hint: {hint}");
        }
    }
    match inv.on_failure {
        OnFailure::Stop => StepResult::Stop(code),
        OnFailure::MissingImageIsFine => StepResult::Noted(code),
    }
}
