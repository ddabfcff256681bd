//! The one place that runs a plan.
//!
//! - Each command line is printed (secrets masked) on stderr before it runs, so stdout
//!   stays the program's own.
//! - The exit code of the failing step is the plan's exit code (128+N for a signal).
//! - Ctrl-C at a terminal reaches docker directly (same process group); we survive it,
//!   let docker finish, and run the cleanup. A signal sent to us alone (`kill`, cron, a
//!   supervisor) is passed on to the running step. When we are killed outright, the kernel
//!   sends the step SIGTERM. (Both are `crate::process`'s rules, as for every child.)
//! - A container name that another run took (run-image's, by the second) is retried with a
//!   suffix when docker refuses it (`Invocation::unique_name`, `NameTaken`).

use crate::plan::{Invocation, LogTo, NAME_TRIES, OnFailure, Plan, Step};
use std::io::IsTerminal;
use std::process::ExitStatus;

/// Exit code for a plan interrupted by Ctrl-C (`process::interrupted_code` gives 128 + the
/// signal that came).
pub(crate) const INTERRUPTED: i32 = 130;

use crate::process::{install_signal_handlers, interrupted};

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
pub(crate) fn execute(prog: &str, plan: &Plan) -> i32 {
    install_signal_handlers();
    let mut rc = 0;
    for step in &plan.steps {
        if interrupted() {
            rc = if rc == 0 {
                crate::process::interrupted_code()
            } else {
                rc
            };
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
        if let StepResult::Stop(code) | StepResult::Noted(code) = run_step(prog, step)
            && rc == 0
        {
            rc = code;
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
        Step::RequireImage { image, error, hint } => match crate::engine::image_exists(image) {
            Ok(true) => StepResult::Ok,
            Ok(false) => {
                eprintln!("{prog}: error: {error}");
                if let Some(hint) = hint {
                    eprintln!("{prog}: hint: {hint}");
                }
                StepResult::Stop(1)
            }
            Err(e) => {
                crate::error::report(prog, &e);
                StepResult::Stop(e.exit_code())
            }
        },
    }
}

fn run_invocation(prog: &str, inv: &Invocation) -> StepResult {
    if let Some(note) = &inv.note {
        eprintln!("{note}");
    }
    if let Some(log) = &inv.log {
        return run_logged(prog, inv, log);
    }
    let mut attempt = 1;
    loop {
        let this = inv.with_name_try(attempt);
        announce(&this.display());
        match run_once(prog, &this, attempt == NAME_TRIES) {
            Ran::Done(result) => return result,
            Ran::NameTaken => {
                attempt += 1;
                eprintln!("{}", name_taken_note(prog, &this, attempt));
            }
        }
    }
}

/// What became of one try of a command.
enum Ran {
    Done(StepResult),
    /// Docker refused the container name as in use: try the next.
    NameTaken,
}

/// Says that the name was taken and which one is tried next.
fn name_taken_note(prog: &str, refused: &Invocation, next: usize) -> String {
    let name = refused.name().unwrap_or_default();
    let next = refused.with_name_try(next);
    format!(
        "{prog}: the container name {name} is taken (another run started in the same \
         second); trying {}",
        next.name().unwrap_or_default()
    )
}

/// Runs the command once. With a container name that may be taken, docker's stderr goes
/// through us (`NameTaken`) so that its refusal of the name can be held back; `last_try`
/// says there is no other name to try.
fn run_once(prog: &str, inv: &Invocation, last_try: bool) -> Ran {
    use std::io::{Read, Write};
    if let Some(remote) = &inv.on_dock {
        return Ran::Done(match run_on_dock(inv, remote) {
            Ok(code) => outcome(prog, inv, code, &[], false),
            Err(e) => {
                crate::error::report(prog, &e);
                // ssh's own code for a connection that failed.
                StepResult::Stop(255)
            }
        });
    }
    let mut command = crate::process::command(inv);
    if inv.stdin.is_some() {
        command.stdin(crate::process::Stdio::piped());
    }
    let capture = inv.on_failure == OnFailure::MissingImageIsFine;
    let mut watch = inv.name().map(NameTaken::new);
    if capture || watch.is_some() {
        command.stderr(crate::process::Stdio::piped());
    }
    let child = match crate::process::spawn(&mut command) {
        Ok(child) => child,
        Err(e) => {
            let err = crate::error::Error::spawn(&inv.program, e);
            crate::error::report(prog, &err);
            return Ran::Done(StepResult::Stop(err.exit_code()));
        }
    };
    let mut child = child;
    if let (Some(input), Some(mut pipe)) = (&inv.stdin, child.stdin.take()) {
        // A short text (a password): it fits the pipe; a program that exits without
        // reading it is reported by its exit code, not by this write.
        let _ = pipe.write_all(input.value.as_bytes());
    }
    if let Some(watch) = watch.as_mut()
        && let Some(mut pipe) = child.stderr.take()
    {
        // Passed on as it comes (it is the container's stderr too), but for docker's
        // refusal of the name.
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let _ = std::io::stderr().write_all(&watch.feed(&buf[..n]));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let waited = child
        .wait_with_output()
        .map(|out| (exit_code(&out.status), out.stderr));
    let (code, stderr) = match waited {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{prog}: error: waiting for {}: {e}", inv.program);
            return Ran::Done(StepResult::Stop(1));
        }
    };
    if let Some(watch) = watch {
        let (taken, held) = watch.finish();
        if taken && code == DOCKER_FAILED && !last_try && !interrupted() {
            return Ran::NameTaken;
        }
        let _ = std::io::stderr().write_all(&held);
    }
    Ran::Done(outcome(prog, inv, code, &stderr, capture))
}

/// Runs a plan's command on a dock through the SSH layer (stdin its text, or closed;
/// stdout and stderr ours): its exit code, 255 when it ended without one (as ssh says).
fn run_on_dock(inv: &Invocation, remote: &crate::plan::OnDock) -> crate::error::Result<i32> {
    use crate::dock::session::{Io, Mux};
    use std::io::Write;
    let name = format!("dock {}", remote.name);
    let mux = Mux::connect(&remote.options, &remote.dest, &name, None, false)?;
    let (program, args) = remote.words.split_first().expect("a command has a program");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stdin = if inv.stdin.is_some() {
        Io::Socket
    } else {
        Io::Null
    };
    let mut child = mux.spawn(program, &args, stdin, Io::Inherit)?;
    if let (Some(input), Some(mut socket)) = (&inv.stdin, child.stdin.take()) {
        // A program that exits without reading it is reported by its exit code.
        let _ = socket.write_all(input.value.as_bytes());
        let _ = child.cutter().end_input();
    }
    let code = child
        .wait()
        .map_err(|e| crate::error::Error::io(format!("ssh to {name}"), e))?;
    Ok(code.unwrap_or(255))
}

/// What a command's exit `code` (and its captured stderr) makes of its step.
fn outcome(prog: &str, inv: &Invocation, code: i32, stderr: &[u8], capture: bool) -> StepResult {
    if code == 0 {
        return StepResult::Ok;
    }
    let stderr = String::from_utf8_lossy(stderr);
    if capture && stderr.contains("No such image") {
        let image = inv.args.last().map(|a| a.value.as_str()).unwrap_or("");
        eprintln!("{image} is not present (nothing to remove)");
        return StepResult::Ok;
    }
    eprint!("{stderr}");
    for hint in failure_hints(inv, code) {
        eprintln!("{prog}: hint: {hint}");
    }
    match &inv.on_failure {
        OnFailure::Explain(known) if known.code == code && !interrupted() => {
            eprintln!("{prog}: error: {}", known.error);
            eprintln!("{prog}: hint: {}", known.hint);
            StepResult::Stop(1)
        }
        OnFailure::Stop | OnFailure::Explain(_) => StepResult::Stop(code),
        OnFailure::MissingImageIsFine => StepResult::Noted(code),
    }
}

/// docker's exit code when docker itself (not the container) failed to run it.
const DOCKER_FAILED: i32 = 125;

/// What to tell the user after a docker command failed with `code`: the daemon does not
/// answer; or the engine lacks the image a `docker run` runs, and how to get it there.
fn failure_hints(inv: &Invocation, code: i32) -> Vec<String> {
    if !inv.is_docker || interrupted() {
        return vec![];
    }
    if let Some(hint) = crate::engine::diagnose(code) {
        return vec![hint];
    }
    match &inv.image {
        Some(image) if code == DOCKER_FAILED => {
            crate::engine::missing_image_hint(&image.reference, &image.subdir)
                .into_iter()
                .collect()
        }
        _ => vec![],
    }
}

/// Watches docker's stderr for its refusal of a container name as in use
/// (`docker: Error response from daemon: Conflict. The container name "/NAME" is already
/// in use by container …`), and holds that line and all that follows back (docker ends
/// with it), so that a retry under another name leaves no error on the screen. Any other
/// output is passed on at once, but for the start of a line that may be docker's own
/// error, held until it is known not to be (at most until its newline).
struct NameTaken {
    needle: Vec<u8>,
    /// The start of the current line, held while it may be docker's error.
    line: Vec<u8>,
    /// The current line is not docker's error: pass on until its newline.
    passing: bool,
    /// Since the refusal: everything, held.
    held: Option<Vec<u8>>,
}

/// How docker's own errors begin (the CLI's, and the daemon's it passes on).
const DOCKER_ERROR_STARTS: [&[u8]; 2] = [b"docker: ", b"Error response from daemon: "];

impl NameTaken {
    fn new(name: &str) -> NameTaken {
        NameTaken {
            needle: format!("The container name \"/{name}\" is already in use").into_bytes(),
            line: vec![],
            passing: false,
            held: None,
        }
    }

    /// Takes some output; returns what may be passed on now.
    fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for (i, &b) in data.iter().enumerate() {
            if let Some(held) = &mut self.held {
                held.extend_from_slice(&data[i..]);
                break;
            }
            if self.passing {
                out.push(b);
                self.passing = b != b'\n';
                continue;
            }
            self.line.push(b);
            let line = &self.line;
            if b == b'\n' {
                if line.windows(self.needle.len()).any(|w| w == self.needle) {
                    self.held = Some(std::mem::take(&mut self.line));
                } else {
                    out.append(&mut self.line);
                }
            } else if !DOCKER_ERROR_STARTS
                .iter()
                .any(|start| start.starts_with(line) || line.starts_with(start))
            {
                out.append(&mut self.line);
                self.passing = true;
            }
        }
        out
    }

    /// At the end: was the name refused, and what is still held.
    fn finish(mut self) -> (bool, Vec<u8>) {
        match self.held {
            Some(mut held) => {
                self.line.append(&mut held);
                (true, self.line)
            }
            None => (false, self.line),
        }
    }
}

/// Runs a command whose output goes to a rotating log (`run-image --log`): stdin not
/// attached, stdout and stderr two pipes that this process reads into the log (merged a
/// whole line at a time, in the order docker delivers them), between a start banner
/// (time, image and id, the command as printed) and an end banner (exit code, time,
/// duration), written however the run ends. Signals reach docker as for any step. At a
/// terminal the command line is shown as usual; otherwise (cron) nothing is printed
/// unless the run fails. A run before it that ended without its end banner (killed by
/// SIGKILL, or the machine stopped) is said so first.
fn run_logged(prog: &str, inv: &Invocation, to: &LogTo) -> StepResult {
    use crate::service::logrotate::{RotatingLog, end_banner, start_banner, unended_note};
    use std::io::ErrorKind;
    use std::time::{Instant, SystemTime};

    let dir = to.dir.display();
    let mut log = match RotatingLog::open(&to.dir, to.max_size, to.keep) {
        Ok(log) => log,
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            eprintln!(
                "{prog}: error: another run is writing to the log in {dir} (it holds {dir}/lock)"
            );
            eprintln!(
                "{prog}: hint: wait until it ends, or give this run its own directory: --log DIR"
            );
            return StepResult::Stop(1);
        }
        Err(e) => {
            let err = crate::error::Error::io(format!("cannot open the log in {dir}"), e);
            crate::error::report(prog, &err);
            return StepResult::Stop(1);
        }
    };
    let current = log.current_path();
    let shown = inv.display();
    let at_terminal = std::io::stderr().is_terminal();
    if at_terminal {
        announce(&shown);
        eprintln!("output to {} (rotated)", current.display());
    }
    let id = match crate::engine::inspect_image(&to.image, "{{.Id}}") {
        Ok(Some(id)) => id,
        Ok(None) => "(not in the local engine: docker run pulls it)".into(),
        Err(e) => format!("(id unknown: {e})"),
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    let cannot_write = |e: &std::io::Error| {
        eprintln!("{prog}: error: cannot write the log in {dir}: {e}");
    };
    // A run's last line is its end banner; a log that ends otherwise lost its last run's.
    let unended = match log.last_line() {
        Ok(Some(last)) => unended_note(prog, &last),
        _ => None,
    };
    for line in unended
        .into_iter()
        .chain(start_banner(prog, &to.image, &id, &shown, started))
    {
        if let Err(e) = log.line(&line) {
            cannot_write(&e);
            return StepResult::Stop(1);
        }
    }
    let end = |log: &mut RotatingLog, outcome: &str| {
        let line = end_banner(prog, outcome, SystemTime::now(), clock.elapsed());
        log.line(&line).and_then(|()| log.finish())
    };

    let mut broken = false;
    let mut attempt = 1;
    let code = loop {
        let this = inv.with_name_try(attempt);
        match log_once(
            prog,
            &this,
            &mut log,
            &to.dir,
            &mut broken,
            attempt == NAME_TRIES,
        ) {
            Ok(Logged::Exited(code)) => break code,
            Ok(Logged::NameTaken) => {
                attempt += 1;
                let note = name_taken_note(prog, &this, attempt);
                let retried = inv.with_name_try(attempt).display();
                if at_terminal {
                    eprintln!("{note}");
                    announce(&retried);
                }
                for line in [format!("==== {note}"), format!("==== command {retried}")] {
                    if !broken && let Err(e) = log.line(&line) {
                        cannot_write(&e);
                        broken = true;
                    }
                }
            }
            Err(err) => {
                let _ = end(&mut log, &format!("not started: {err}"));
                crate::error::report(prog, &err);
                return StepResult::Stop(err.exit_code());
            }
        }
    };
    let outcome = if interrupted() {
        format!("exit code {code} (interrupted)")
    } else {
        format!("exit code {code}")
    };
    if !broken && let Err(e) = end(&mut log, &outcome) {
        cannot_write(&e);
        broken = true;
    }
    if code != 0 {
        eprintln!(
            "{prog}: exit code {code}; the output is in {}",
            current.display()
        );
        for hint in failure_hints(inv, code) {
            eprintln!("{prog}: hint: {hint}");
        }
        return StepResult::Stop(code);
    }
    if broken {
        StepResult::Stop(1)
    } else {
        StepResult::Ok
    }
}

/// What became of one try of a logged run.
enum Logged {
    Exited(i32),
    /// Docker refused the container name as in use: try the next.
    NameTaken,
}

/// One try of a logged run: spawns it with its output into `log` and waits for it. An
/// error when it could not start. After a failed write to the log (`broken`, said once)
/// the output is still read, so that docker is not blocked.
fn log_once(
    prog: &str,
    inv: &Invocation,
    log: &mut crate::service::logrotate::RotatingLog,
    dir: &std::path::Path,
    broken: &mut bool,
    last_try: bool,
) -> Result<Logged, crate::error::Error> {
    use std::io::{ErrorKind, Read};
    use std::os::fd::AsRawFd;
    const STDERR: usize = 1;

    // A pipe each for stdout and stderr, merged into the log a whole line at a time (docker
    // delivers output in pieces that may cut a line; one pipe would splice the other
    // stream's lines into it).
    let pipes = std::io::pipe().and_then(|out| Ok((out, std::io::pipe()?)));
    let ((out_reader, out), (err_reader, err)) =
        pipes.map_err(|e| crate::error::Error::io("cannot make a pipe", e))?;
    let mut command = crate::process::command(inv);
    command
        .stdin(crate::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    let spawned = crate::process::spawn(&mut command);
    // Our copies of the pipes' writing ends: the reading below ends when docker's close.
    drop(command);
    let mut child = spawned.map_err(|e| crate::error::Error::spawn(&inv.program, e))?;
    let mut watch = inv.name().map(NameTaken::new);
    let mut write =
        |log: &mut crate::service::logrotate::RotatingLog, stream: usize, data: &[u8]| {
            if *broken || data.is_empty() {
                return;
            }
            if let Err(e) = log.write_stream(stream, data) {
                eprintln!(
                    "{prog}: error: cannot write the log in {}: {e}",
                    dir.display()
                );
                eprintln!("{prog}: the run goes on; its further output is lost");
                *broken = true;
            }
        };
    let mut readers = [Some(out_reader), Some(err_reader)];
    let mut buf = vec![0u8; 64 * 1024];
    while readers.iter().any(Option::is_some) {
        // poll(2) ignores a negative descriptor: a stream already at its end.
        let mut fds = readers.each_ref().map(|r| libc::pollfd {
            fd: r.as_ref().map_or(-1, |r| r.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `fds` is a valid array of pollfd of the length given.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            eprintln!(
                "{prog}: error: waiting for the output of {}: {e}",
                inv.program
            );
            break;
        }
        for (stream, fd) in fds.iter().enumerate() {
            let Some(reader) = readers[stream].as_mut().filter(|_| fd.revents != 0) else {
                continue;
            };
            match reader.read(&mut buf) {
                Ok(0) => readers[stream] = None,
                Ok(n) => match watch.as_mut() {
                    Some(watch) if stream == STDERR => {
                        let pass = watch.feed(&buf[..n]);
                        write(log, stream, &pass);
                    }
                    _ => write(log, stream, &buf[..n]),
                },
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("{prog}: error: reading the output of {}: {e}", inv.program);
                    readers[stream] = None;
                }
            }
        }
    }
    drop(readers);
    let waited = child.wait();
    let code = match waited {
        Ok(status) => exit_code(&status),
        Err(e) => {
            eprintln!("{prog}: error: waiting for {}: {e}", inv.program);
            1
        }
    };
    if let Some(watch) = watch {
        let (taken, held) = watch.finish();
        if taken && code == DOCKER_FAILED && !last_try && !interrupted() {
            return Ok(Logged::NameTaken);
        }
        write(log, STDERR, &held);
    }
    Ok(Logged::Exited(code))
}

/// Prints the plan (`--dry-run`) or runs it; reports a planning error. Returns the exit code.
pub(crate) fn finish(prog: &str, dry_run: bool, planned: crate::error::Result<Plan>) -> i32 {
    match planned {
        Err(e) => crate::error::fail(prog, &e),
        Ok(plan) if dry_run => {
            print!("{}", plan.script());
            0
        }
        Ok(plan) => execute(prog, &plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the pieces; what was passed on, whether the name was refused, what is held.
    fn watch(name: &str, pieces: &[&str]) -> (String, bool, String) {
        let mut w = NameTaken::new(name);
        let mut passed = vec![];
        for piece in pieces {
            passed.extend(w.feed(piece.as_bytes()));
        }
        let (taken, held) = w.finish();
        (
            String::from_utf8(passed).unwrap(),
            taken,
            String::from_utf8(held).unwrap(),
        )
    }

    #[test]
    fn dockers_refusal_of_the_name_is_held_back_and_the_rest_passed_on() {
        let refusal = "docker: Error response from daemon: Conflict. The container name \
                       \"/ann_dev_1\" is already in use by container \"f00\". You have to \
                       remove (or rename) that container to be able to reuse that name.\n";
        let (passed, taken, held) = watch(
            "ann_dev_1",
            &[
                "Unable to find image 'x' loc",
                "ally\ndock",
                &refusal[4..],
                "\nRun 'docker run --help'\n",
            ],
        );
        assert_eq!(passed, "Unable to find image 'x' locally\n");
        assert!(taken);
        assert_eq!(held, format!("{refusal}\nRun 'docker run --help'\n"));

        // Another name's refusal, or another error of docker's: passed on at its newline.
        let (passed, taken, held) = watch("ann_dev_1_2", &[refusal]);
        assert_eq!(
            (passed.as_str(), taken, held.as_str()),
            (refusal, false, "")
        );
        let other = "docker: Error response from daemon: pull access denied for x\n";
        assert_eq!(
            watch("n", &[other]),
            (other.to_string(), false, String::new())
        );
        // The container's output, with or without a newline, goes on at once.
        assert_eq!(
            watch("n", &["progress 10%\r", "progress 20%"]),
            (
                "progress 10%\rprogress 20%".to_string(),
                false,
                String::new()
            )
        );
        // What could still be docker's error waits for its newline, or the end.
        assert_eq!(
            watch("n", &["Error response from daemon: "]),
            (
                String::new(),
                false,
                "Error response from daemon: ".to_string()
            )
        );
    }
}
