//! Deploying a service: replace the running container of a service with one of the newest
//! image, and put the old one back when the new one does not stay up (or healthy).
//!
//! The service is the container that the image section's `service=` names. It is started
//! the way run-image starts the image (the section's environment, env, gpu, network,
//! volumes, ports, args and cmd), but detached with `--restart unless-stopped`.
//!
//! The steps: pull the image the section designates (not a project image, whose name has
//! no registry, nor with `--no-pull`); rename the running NAME to NAME-previous and stop
//! it; `docker run -d --name NAME …`; watch NAME for the settle time, and until it is
//! healthy when it has a HEALTHCHECK; then remove NAME-previous, or, when the new one
//! failed, remove it and start NAME-previous again under its name. serve-hooks runs the
//! same code for each webhook (`deploy_at`).

use crate::context::Context;
use crate::engine;
use crate::error::{Error, Result};
use crate::plan::{Invocation, Plan, Step};
use crate::process::Ended;
use crate::project::Project;
use crate::project::cfg::keys;
use crate::project::run::{self, Lifecycle};
use serde_json::Value;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::{Duration, Instant};

/// The old container's name while the new one is watched: `<service>-previous`.
pub(crate) const PREVIOUS_SUFFIX: &str = "-previous";
/// How many lines of a failed container's log are shown.
const LOG_LINES: usize = 20;
const POLL: Duration = Duration::from_millis(250);

/// How long a new container is watched, and whether an unchanged image is deployed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub settle: Duration,
    pub health_timeout: Duration,
    pub if_changed: bool,
}

/// A service of the project, ready to deploy.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    /// The image (its cfg section).
    pub image: String,
    /// The container's name (`service=`).
    pub name: String,
    /// The image reference the section designates (`name:tag`).
    pub reference: String,
    /// Why the image is not pulled, when it is not.
    pub no_pull: Option<String>,
    /// `docker run -d --name NAME --restart unless-stopped …`
    pub run: Invocation,
}

impl Service {
    pub(crate) fn previous(&self) -> String {
        format!("{}{PREVIOUS_SUFFIX}", self.name)
    }

    fn docker(&self) -> Invocation {
        engine::docker(&self.run.cwd)
    }
}

/// Is `name` a name docker accepts for a container (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`)?
pub(crate) fn valid_container_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The images of the project (docker/ subdirectories and synthetic images).
fn valid_images(project: &Project) -> Result<Vec<String>> {
    let mut valid = project.image_dirs()?;
    valid.extend(project.synthetic_images()?);
    Ok(valid)
}

/// The service of `image`: its container name, image and `docker run`.
pub(crate) fn service(
    project: &Project,
    image: &str,
    no_pull: bool,
    ctx: &Context,
) -> Result<Service> {
    Project::check_image(image, &valid_images(project)?)?;
    let cfg = &project.cfg;
    let name = if cfg.has_section(image) {
        cfg.get(image, keys::SERVICE)?
    } else {
        None
    };
    let name = name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
        Error::Usage(format!(
            "[{image}] has no service= in {}: deploy-image needs the name of the service's \
             container; add `service=NAME` to the [{image}] section (e.g. service={image})",
            cfg.path().display()
        ))
    })?;
    let name = ctx
        .expand_env(name.trim())
        .map_err(|m| cfg.value_error(image, keys::SERVICE, m))?;
    if !valid_container_name(&name) || name.ends_with(PREVIOUS_SUFFIX) {
        return Err(cfg.value_error(
            image,
            keys::SERVICE,
            format!(
                "`{name}` is not a container name docker accepts (letters, digits, `_.-`, \
                 starting with a letter or digit; not ending in {PREVIOUS_SUFFIX})"
            ),
        ));
    }
    // `tag=timestamp`: the newest build here.
    let reference = crate::engine::tags::newest_here(project.image_ref(image)?)?.to_string();
    let no_pull = if no_pull {
        Some("--no-pull".to_string())
    } else if is_project_named(project, image)? {
        Some(format!(
            "{reference} is a project image (built here: its name names no registry), \
             the local one is deployed"
        ))
    } else {
        None
    };
    let run = run::docker_run(
        project,
        &run::Request::section_only(image),
        &Lifecycle::Service { name: name.clone() },
        ctx,
    )?;
    Ok(Service {
        image: image.to_string(),
        name,
        reference,
        no_pull,
        run,
    })
}

/// Does the image have the project convention's name (`<project>-…`, no `prefix=False`)?
/// Such a name is never on a registry: it is built here.
fn is_project_named(project: &Project, image: &str) -> Result<bool> {
    let cfg = &project.cfg;
    if !cfg.has_section(image) || cfg.get(image, keys::NAME)?.is_none() {
        return Ok(true);
    }
    Ok(!matches!(
        cfg.get(image, keys::PREFIX)?.as_deref(),
        Some("False" | "false" | "F" | "f")
    ))
}

/// The container a deploy replaces, as found before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Current {
    pub running: bool,
    /// Its image's id (`sha256:…`).
    pub image_id: String,
}

pub(crate) fn current(name: &str) -> Result<Option<Current>> {
    Ok(engine::inspect_container(name)?.map(|c| {
        let state = State::of(&c);
        Current {
            running: state.running,
            image_id: state.image,
        }
    }))
}

/// What a successful deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Deployed {
    /// There was no container of that name: the service was started.
    Started { image_id: String },
    /// The old container was replaced (and removed).
    Replaced { image_id: String, previous: String },
    /// `--if-changed` and the service already ran this image.
    Unchanged { image_id: String },
}

impl std::fmt::Display for Deployed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Deployed::Started { image_id } => write!(f, "started (image {})", short(image_id)),
            Deployed::Replaced { image_id, previous } => write!(
                f,
                "replaced: image {} instead of {}",
                short(image_id),
                short(previous)
            ),
            Deployed::Unchanged { image_id } => {
                write!(f, "unchanged: it already runs image {}", short(image_id))
            }
        }
    }
}

/// `sha256:0123456789ab` of an image id.
pub(crate) fn short(id: &str) -> String {
    match id.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}", &hex[..hex.len().min(12)]),
        None => id.to_string(),
    }
}

/// The plan `--dry-run` prints: the steps of a deploy, given the container found now.
/// The docker commands of one deploy, decided from what runs now before any of them
/// runs: [`plan`] prints them (`--dry-run`), [`deploy`] runs them, so the two cannot
/// drift apart. Which of them run depends on what the watch sees: confirmed, the
/// previous container is removed; failed, the roll-back runs.
struct Steps {
    /// `docker pull REFERENCE`, unless the image is not pulled.
    pull: Option<Invocation>,
    /// `docker rename NAME NAME-previous`, then `docker stop NAME-previous` when it ran.
    step_aside: Vec<Invocation>,
    /// `docker run -d --name NAME …`
    run: Invocation,
    /// `docker rm -v NAME-previous`, once the new one is confirmed.
    confirm: Option<Invocation>,
    /// `docker rm -f -v NAME` (the new one), then `docker rename NAME-previous NAME` and
    /// `docker start NAME` as the previous one was.
    remove_new: Invocation,
    restore: Vec<Invocation>,
}

/// `docker pull REFERENCE`, unless the image is not pulled (the first step, before what
/// runs now is looked at).
fn pull(svc: &Service) -> Option<Invocation> {
    svc.no_pull
        .is_none()
        .then(|| svc.docker().args(["pull", &svc.reference]))
}

fn steps(svc: &Service, current: Option<&Current>) -> Steps {
    let name = &svc.name;
    let previous = svc.previous();
    let mut step_aside = vec![];
    let mut restore = vec![];
    if let Some(cur) = current {
        step_aside.push(svc.docker().args(["rename", name, &previous]));
        restore.push(svc.docker().args(["rename", &previous, name]));
        if cur.running {
            step_aside.push(svc.docker().args(["stop", &previous]));
            restore.push(svc.docker().args(["start", name]));
        }
    }
    Steps {
        pull: pull(svc),
        step_aside,
        run: svc.run.clone(),
        confirm: current.map(|_| svc.docker().args(["rm", "-v", &previous])),
        remove_new: svc.docker().args(["rm", "-f", "-v", name]),
        restore,
    }
}

pub(crate) fn plan(svc: &Service, current: Option<&Current>, opts: &Options) -> Plan {
    let mut plan = Plan::default();
    let name = &svc.name;
    let steps = steps(svc, current);
    match (&steps.pull, &svc.no_pull) {
        (Some(pull), _) => plan.run(pull.clone()),
        (None, why) => plan.steps.push(Step::Say(format!(
            "not pulled: {}",
            why.as_deref().unwrap_or_default()
        ))),
    }
    if opts.if_changed {
        plan.steps.push(Step::Say(format!(
            "--if-changed: nothing more when {name} already runs this image"
        )));
    }
    if current.is_none() {
        plan.steps.push(Step::Say(format!(
            "no container {name} yet: the service is started"
        )));
    }
    for inv in &steps.step_aside {
        plan.run(inv.clone());
    }
    plan.run(steps.run.clone());
    let mut check = format!(
        "{name} must keep running for {}s without a restart",
        opts.settle.as_secs()
    );
    check.push_str(&format!(
        ", and report healthy within {}s if it has a HEALTHCHECK; else roll back:",
        opts.health_timeout.as_secs().max(opts.settle.as_secs())
    ));
    plan.steps.push(Step::Say(check));
    let back: Vec<String> = std::iter::once(format!("docker logs --tail {LOG_LINES} {name}"))
        .chain(
            std::iter::once(&steps.remove_new)
                .chain(&steps.restore)
                .map(|i| i.display()),
        )
        .collect();
    plan.steps.push(Step::Say(format!("  {}", back.join("; "))));
    if let Some(confirm) = steps.confirm {
        plan.run(confirm);
    }
    plan
}

/// Where a deploy reports: a terminal (deploy-image, docker's own output let through) or
/// a log (serve-hooks: each line prefixed, docker's output captured and shown on failure).
pub(crate) struct Report {
    prefix: String,
    inherit: bool,
}

impl Report {
    pub(crate) fn terminal() -> Report {
        Report {
            prefix: String::new(),
            inherit: true,
        }
    }

    pub(crate) fn log(prefix: impl Into<String>) -> Report {
        Report {
            prefix: prefix.into(),
            inherit: false,
        }
    }

    pub(crate) fn say(&self, text: &str) {
        for line in text.lines() {
            eprintln!("{}{line}", self.prefix);
        }
    }

    fn command(&self, inv: &Invocation) {
        let line = inv.display();
        if self.inherit && std::io::stderr().is_terminal() {
            eprintln!("\x1b[1m{line}\x1b[0m");
        } else {
            self.say(&line);
        }
    }
}

/// A docker step that failed: its exit code (none when it was stopped) and what it said.
struct Failed {
    code: Option<i32>,
    stderr: String,
}

impl Failed {
    fn describe(&self, inv: &Invocation) -> String {
        let said = self.stderr.trim();
        let mut text = match self.code {
            Some(code) => format!("`{}` failed (exit code {code})", inv.display()),
            None => format!("`{}` failed", inv.display()),
        };
        if !said.is_empty() {
            text.push_str(": ");
            text.push_str(said);
        }
        text
    }
}

/// How long a step may take, and whether a Ctrl-C abandons it. Only the pull is
/// abandoned (nothing has changed yet); a step that changes the service (rename, stop,
/// run, rm, start) is short and is let finish, so that the deploy, not the signal,
/// decides what comes next.
fn bound(inv: &Invocation) -> (Duration, bool) {
    match inv.argv().first().copied() {
        Some("pull") => (engine::pull_timeout(), true),
        // docker stop waits for the container's own stop timeout (10 s unless set).
        Some("stop") => (engine::query_timeout() * 2, false),
        _ => (engine::query_timeout(), false),
    }
}

/// Runs one docker command, printed first, in a process group of its own (a Ctrl-C at
/// the terminal reaches deploy-image, not docker; serve-hooks' Ctrl-C does not cut a
/// deploy in the middle) and within its bound (a hung docker must not wedge the deploy,
/// nor serve-hooks' queue for the image).
fn step(out: &Report, inv: &Invocation) -> std::result::Result<(), Failed> {
    out.command(inv);
    let mut command = crate::process::command(inv);
    command.stderr(crate::process::Stdio::piped());
    if !out.inherit {
        command.stdout(crate::process::Stdio::piped());
    }
    let (limit, abandon) = bound(inv);
    let output = match crate::process::bounded(command, limit, abandon) {
        Ok(Ended::Exited(o)) => o,
        Ok(Ended::TimedOut(limit)) => {
            return Err(Failed {
                code: None,
                stderr: engine::hung(&inv.display(), limit),
            });
        }
        Ok(Ended::Interrupted) => {
            return Err(Failed {
                code: None,
                stderr: "interrupted (Ctrl-C)".into(),
            });
        }
        Err(e) => {
            return Err(Failed {
                code: Some(127),
                stderr: format!("cannot run {}: {e}", inv.program),
            });
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        // docker pull's progress and warnings: shown as they would be.
        if out.inherit {
            eprint!("{stderr}");
        }
        return Ok(());
    }
    Err(Failed {
        code: Some(output.status.code().unwrap_or(1)),
        stderr,
    })
}

/// A container's state, as `docker container inspect` tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub running: bool,
    pub restarting: bool,
    pub exit_code: i64,
    pub error: String,
    pub oom_killed: bool,
    pub restarts: u64,
    /// `starting`, `healthy` or `unhealthy` with a HEALTHCHECK, else None.
    pub health: Option<String>,
    /// The output of the last health check.
    pub health_output: String,
    pub image: String,
    pub id: String,
}

impl State {
    pub(crate) fn of(container: &Value) -> State {
        let s = &container["State"];
        let health = &s["Health"];
        State {
            running: s["Running"].as_bool().unwrap_or(false),
            restarting: s["Restarting"].as_bool().unwrap_or(false),
            exit_code: s["ExitCode"].as_i64().unwrap_or(0),
            error: s["Error"].as_str().unwrap_or("").to_string(),
            oom_killed: s["OOMKilled"].as_bool().unwrap_or(false),
            restarts: container["RestartCount"].as_u64().unwrap_or(0),
            health: health["Status"]
                .as_str()
                .filter(|h| !h.is_empty() && *h != "none")
                .map(str::to_string),
            health_output: health["Log"]
                .as_array()
                .and_then(|l| l.last())
                .and_then(|l| l["Output"].as_str())
                .unwrap_or("")
                .trim()
                .to_string(),
            image: container["Image"].as_str().unwrap_or("").to_string(),
            id: container["Id"].as_str().unwrap_or("").to_string(),
        }
    }

    /// Is the container failing (`Some(why)`) or fine so far (`None`)? `died` tells the
    /// exit code of a container that docker restarted already (its state then says 0).
    fn failure(&self, elapsed: Duration, died: impl FnOnce() -> Option<i64>) -> Option<String> {
        let after = format!("{:.1}s", elapsed.as_secs_f64());
        let detail = || {
            let mut d = String::new();
            if self.oom_killed {
                d.push_str(" (killed: out of memory)");
            }
            if !self.error.is_empty() {
                d.push_str(&format!(" ({})", self.error));
            }
            d
        };
        if self.restarting || self.restarts > 0 {
            let code = match self.running {
                true => died().unwrap_or(self.exit_code),
                false => self.exit_code,
            };
            return Some(format!(
                "exited with code {code} and was restarted by docker within {after}{}",
                detail()
            ));
        }
        if !self.running {
            return Some(format!(
                "exited with code {} after {after}{}",
                self.exit_code,
                detail()
            ));
        }
        if self.health.as_deref() == Some("unhealthy") {
            let mut why = format!("reported unhealthy after {after}");
            if !self.health_output.is_empty() {
                why.push_str(&format!(" (health check: {})", self.health_output));
            }
            return Some(why);
        }
        None
    }
}

/// Watches the new container: `Ok(what was confirmed)` or `Err(what went wrong)`.
fn watch(name: &str, opts: &Options, out: &Report) -> std::result::Result<String, String> {
    let start = Instant::now();
    let since = crate::time::unix_secs().saturating_sub(2);
    let settle = opts.settle;
    let health_deadline = opts.health_timeout.max(settle);
    let mut announced = false;
    loop {
        // Ctrl-C before the new container is confirmed: roll back (the inspects run in
        // their own process group, so the signal never fails one of them).
        if crate::process::interrupted() {
            return Err(format!(
                "was not yet confirmed when the deploy was interrupted (Ctrl-C during the \
                 watch, after {:.1}s of {}s)",
                start.elapsed().as_secs_f64(),
                settle.as_secs()
            ));
        }
        let elapsed = start.elapsed();
        let state = match engine::inspect_container(name) {
            Ok(Some(c)) => State::of(&c),
            Ok(None) => return Err("disappeared (was it started with --rm, or removed?)".into()),
            Err(e) => return Err(format!("could not be inspected: {e}")),
        };
        if !announced {
            let mut text = format!(
                "Watching {name}: it must keep running for {}s",
                settle.as_secs()
            );
            if state.health.is_some() {
                text.push_str(&format!(
                    " and its HEALTHCHECK report healthy within {}s",
                    health_deadline.as_secs()
                ));
            }
            out.say(&text);
            announced = true;
        }
        if let Some(why) = state.failure(elapsed, || first_exit_code(&state.id, since)) {
            return Err(why);
        }
        if elapsed >= settle {
            match state.health.as_deref() {
                None => {
                    return Ok(format!("kept running for {}s", settle.as_secs()));
                }
                Some("healthy") => {
                    return Ok(format!(
                        "healthy, and kept running for {:.1}s",
                        elapsed.as_secs_f64()
                    ));
                }
                Some(h) if elapsed >= health_deadline => {
                    return Err(format!(
                        "was not healthy within {}s (health: {h})",
                        health_deadline.as_secs()
                    ));
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The exit code of the container's first death since `since` (unix seconds), from the
/// engine's events.
fn first_exit_code(id: &str, since: u64) -> Option<i64> {
    let mut command = crate::process::Command::new("docker");
    command
        .args(["events", "--since", &since.to_string()])
        .args(["--until", &(crate::time::unix_secs() + 1).to_string()])
        .args([
            "--filter",
            &format!("container={id}"),
            "--filter",
            "event=die",
        ])
        .args(["--format", "{{.Actor.Attributes.exitCode}}"])
        .stdout(crate::process::Stdio::piped())
        .stderr(crate::process::Stdio::null());
    let Ended::Exited(out) =
        crate::process::bounded(command, engine::query_timeout(), false).ok()?
    else {
        return None;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().parse().ok())
}

/// The last lines of a container's log (its stdout and stderr, as they came).
fn log_tail(name: &str) -> String {
    let run = || -> std::io::Result<String> {
        // One pipe for both streams: the lines in the order docker wrote them.
        let (mut reader, writer) = std::io::pipe()?;
        let mut command = crate::process::Command::new("docker");
        command
            .args(["logs", "--tail", &LOG_LINES.to_string(), name])
            .stdout(writer.try_clone()?)
            .stderr(writer);
        let read = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = reader.read_to_end(&mut text);
            text
        });
        let limit = engine::query_timeout();
        if let Ended::TimedOut(_) = crate::process::bounded(command, limit, false)? {
            return Ok(format!(
                "(docker logs did not answer within {} s)",
                limit.as_secs()
            ));
        }
        let text = read.join().unwrap_or_default();
        Ok(String::from_utf8_lossy(&text).into_owned())
    };
    run().unwrap_or_else(|e| format!("(docker logs failed: {e})"))
}

fn deploy_error(message: String, hint: String) -> Error {
    if crate::process::interrupted() {
        return Error::Interrupted(message);
    }
    Error::Deploy {
        message,
        hint: Some(hint),
    }
}

/// Deploys the service: see the module's documentation.
pub(crate) fn deploy(svc: &Service, opts: &Options, out: &Report) -> Result<Deployed> {
    let name = &svc.name;
    let previous = svc.previous();
    let unchanged_hint = || "nothing was changed: the service runs as it did".to_string();

    // 1. The image.
    match pull(svc) {
        None => out.say(&format!(
            "Not pulling: {}",
            svc.no_pull.as_deref().unwrap_or_default()
        )),
        Some(pull) => {
            if let Err(f) = step(out, &pull) {
                return Err(deploy_error(
                    format!(
                        "deploy of {}: {}; nothing was changed",
                        svc.image,
                        f.describe(&pull)
                    ),
                    "check the registry, the name in the cfg and the login (`docker login \
                     HOST`); --no-pull deploys the image in the local engine"
                        .into(),
                ));
            }
        }
    }
    let Some(image_id) = engine::inspect_image(&svc.reference, "{{.Id}}")? else {
        return Err(Error::NoImage {
            image: svc.reference.clone(),
        });
    };

    // 2. What runs now. A NAME-previous is the trace of a deploy that was killed midway:
    // which of the two should run is for a person to say.
    if engine::inspect_container(&previous)?.is_some() {
        return Err(Error::Deploy {
            message: format!(
                "a container {previous} exists: another deploy of {name} is under way, or \
                 one was interrupted before it finished; nothing was changed"
            ),
            hint: Some(format!(
                "if {name} runs as it should: `docker rm {previous}`; to go back to the \
                 previous one: `docker rm -f {name}; docker rename {previous} {name}; \
                 docker start {name}`. Then deploy again"
            )),
        });
    }
    let current = current(name)?;
    if let Some(cur) = &current
        && opts.if_changed
        && cur.running
        && cur.image_id == image_id
    {
        out.say(&format!(
            "{name} already runs {} ({}): nothing to do",
            svc.reference,
            short(&image_id)
        ));
        return Ok(Deployed::Unchanged { image_id });
    }
    if crate::process::interrupted() {
        return Err(Error::Interrupted(format!(
            "deploy of {}: {}",
            svc.image,
            unchanged_hint()
        )));
    }

    // 3. The old container steps aside (kept until the new one is confirmed): renamed,
    // then stopped if it ran.
    let steps = steps(svc, current.as_ref());
    for (i, inv) in steps.step_aside.iter().enumerate() {
        if let Err(f) = step(out, inv) {
            let back = if i == 0 {
                "nothing was changed".to_string()
            } else {
                roll_back(&steps, svc, current.as_ref(), out, false)
            };
            return Err(deploy_error(
                format!("deploy of {}: {}; {back}", svc.image, f.describe(inv)),
                unchanged_hint(),
            ));
        }
    }

    // A Ctrl-C while the old one stepped aside: it comes back, nothing new is started.
    if crate::process::interrupted() {
        let back = roll_back(&steps, svc, current.as_ref(), out, false);
        return Err(Error::Interrupted(format!(
            "deploy of {} interrupted before the new container was started; {back}",
            svc.image
        )));
    }

    // 4. The new one, watched.
    let verdict = match step(out, &steps.run) {
        Err(f) => Err((f.describe(&steps.run), false)),
        Ok(()) => watch(name, opts, out).map_err(|why| {
            (
                format!(
                    "the new container {name} ({}, {}) {why}",
                    svc.reference,
                    short(&image_id)
                ),
                true,
            )
        }),
    };
    match verdict {
        Ok(confirmed) => {
            out.say(&format!("{name} {confirmed}"));
            let (Some(cur), Some(rm)) = (current, &steps.confirm) else {
                return Ok(Deployed::Started { image_id });
            };
            if let Err(f) = step(out, rm) {
                return Err(Error::Deploy {
                    message: format!(
                        "{name} is deployed ({}), but {}",
                        short(&image_id),
                        f.describe(rm)
                    ),
                    hint: Some(format!(
                        "remove it (`docker rm {previous}`): the next deploy refuses to run \
                         while it is there"
                    )),
                });
            }
            Ok(Deployed::Replaced {
                image_id,
                previous: cur.image_id,
            })
        }
        Err((why, started)) => {
            let logs = if started {
                log_tail(name)
            } else {
                String::new()
            };
            let back = roll_back(&steps, svc, current.as_ref(), out, true);
            let mut message = format!("deploy of {} failed: {why}; {back}", svc.image);
            if !logs.trim().is_empty() {
                message.push_str(&format!("\nthe last lines of {name}'s log:"));
                for line in logs.lines() {
                    message.push_str(&format!("\n  | {line}"));
                }
            }
            let hint = if current.is_some() {
                "the service runs the version it ran before; fix the image (or its cfg section) \
                 and deploy again"
            } else {
                "fix the image (or its cfg section) and deploy again"
            };
            Err(deploy_error(message, hint.into()))
        }
    }
}

/// Removes the new container (when `remove_new`) and brings the previous one back under
/// its name, started when it ran before: the roll-back of `steps`. Says what it did, or
/// what is left to do.
fn roll_back(
    steps: &Steps,
    svc: &Service,
    current: Option<&Current>,
    out: &Report,
    remove_new: bool,
) -> String {
    let name = &svc.name;
    let previous = svc.previous();
    out.say(&format!("Rolling back {name}"));
    if remove_new
        && let Err(f) = step(out, &steps.remove_new)
        && !f.stderr.contains("No such container")
    {
        return format!(
            "ROLLBACK FAILED: {}; {previous} is the previous container: `docker rm -f \
                 {name}; docker rename {previous} {name}; docker start {name}`",
            f.describe(&steps.remove_new)
        );
    }
    let Some(cur) = current else {
        return format!(
            "the new container was removed; {name} did not exist before, so nothing else runs"
        );
    };
    let mut restore = steps.restore.iter();
    if let Some(rename) = restore.next()
        && let Err(f) = step(out, rename)
    {
        return format!(
            "ROLLBACK FAILED: {}; the previous container is {previous}: `docker rename \
             {previous} {name}; docker start {name}`",
            f.describe(rename)
        );
    }
    let Some(start) = restore.next() else {
        return format!(
            "rolled back: the previous container {name} (image {}) is back, stopped as it was",
            short(&cur.image_id)
        );
    };
    if let Err(f) = step(out, start) {
        return format!(
            "ROLLBACK FAILED: the previous container is back as {name} but {}",
            f.describe(start)
        );
    }
    format!(
        "rolled back: the previous container {name} runs again (image {})",
        short(&cur.image_id)
    )
}

/// Deploys IMAGE of the project at `root` (serve-hooks: the cfg is read anew each time).
pub(crate) fn deploy_at(
    root: &Path,
    image: &str,
    opts: &Options,
    out: &Report,
) -> Result<Deployed> {
    let ctx = Context::from_process();
    let project = Project::discover(root, &ctx.user)?;
    let svc = service(&project, image, false, &ctx)?;
    deploy(&svc, opts, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::cfg::Cfg;

    fn project(cfg: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shop");
        std::fs::create_dir_all(root.join("docker/web")).unwrap();
        std::fs::create_dir_all(root.join("docker/worker")).unwrap();
        let p = Project {
            root: root.clone(),
            name: "shop".into(),
            cfg: Cfg::parse(cfg, &root.join("docker/dockerutils.cfg")).unwrap(),
            user: "ann".into(),
            version: Default::default(),
        };
        (dir, p)
    }

    fn ctx() -> Context {
        Context {
            user: "ann".into(),
            home: "/home/ann".into(),
            env: [("AWS_ACCESS_KEY_ID".to_string(), "AKIA".to_string())].into(),
            stdin_is_tty: true,
            superuser: false,
        }
    }

    const OPTS: Options = Options {
        settle: Duration::from_secs(3),
        health_timeout: Duration::from_secs(30),
        if_changed: false,
    };

    #[test]
    fn a_service_runs_detached_with_its_sections_options() {
        let (_d, p) = project(
            "[web]\nservice=shop-web\nports=-p 80:8080\nenv=webenv\ncmd=httpd -f -p 8080\n\
             interactive=-it\n[webenv]\nDB_PASSWORD=pw\nLOG=info\n",
        );
        let svc = service(&p, "web", false, &ctx()).unwrap();
        assert_eq!(svc.name, "shop-web");
        assert_eq!(svc.reference, "shop-web:ann");
        assert!(svc.no_pull.as_deref().unwrap().contains("project image"));
        let argv = svc.run.argv().join(" ");
        assert_eq!(
            argv,
            "run -d --name shop-web --restart unless-stopped --init -e DB_PASSWORD -e LOG=info \
             -p 80:8080 shop-web:ann httpd -f -p 8080"
        );
        // The secret travels in docker's environment; no terminal, no --rm, no AWS.
        assert_eq!(svc.run.env[0].name, "DB_PASSWORD");
        assert!(svc.run.env[0].secret);
    }

    #[test]
    fn registry_images_are_pulled_and_the_plan_keeps_the_old_container() {
        let (_d, p) =
            project("[web]\nname=127.0.0.1:5000/shop/web\nprefix=False\ntag=latest\nservice=web\n");
        let svc = service(&p, "web", false, &ctx()).unwrap();
        assert_eq!(svc.no_pull, None);
        let running = Current {
            running: true,
            image_id: "sha256:1".into(),
        };
        let script = plan(&svc, Some(&running), &OPTS).script();
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[1], "docker pull 127.0.0.1:5000/shop/web:latest");
        assert_eq!(lines[2], "docker rename web web-previous");
        assert_eq!(lines[3], "docker stop web-previous");
        assert!(lines[4].starts_with("docker run -d --name web --restart unless-stopped"));
        assert!(lines[5].contains("keep running for 3s"), "{script}");
        assert!(lines[6].contains("docker rename web-previous web; docker start web"));
        assert_eq!(lines[7], "docker rm -v web-previous");
        // First deploy: nothing to rename, stop or remove.
        let first = plan(&svc, None, &OPTS).script();
        assert!(!first.contains("rename") && !first.contains("rm -v web-previous"));
        let local = service(&p, "web", true, &ctx()).unwrap();
        assert_eq!(local.no_pull.as_deref(), Some("--no-pull"));
    }

    #[test]
    fn errors_say_how_to_fix_them() {
        let (_d, p) = project("[web]\nports=-p 80:80\n[worker]\nservice=bad name\n");
        let e = service(&p, "web", false, &ctx()).unwrap_err();
        assert!(
            e.to_string()
                .contains("add `service=NAME` to the [web] section"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
        let e = service(&p, "nope", false, &ctx()).unwrap_err();
        assert!(matches!(e, Error::UnknownImage { .. }));
        assert_eq!(e.hint().unwrap(), "valid images: web, worker");
        let e = service(&p, "worker", false, &ctx()).unwrap_err();
        assert!(e.to_string().contains("not a container name"), "{e}");
    }

    #[test]
    fn container_states() {
        let c = |v: &str| State::of(&serde_json::from_str(v).unwrap());
        let up = c(r#"{"State":{"Running":true},"RestartCount":0,"Image":"sha256:a"}"#);
        assert_eq!(up.failure(Duration::from_secs(1), || None), None);
        assert_eq!(up.health, None);
        let exited = c(r#"{"State":{"Running":false,"ExitCode":3},"RestartCount":0}"#);
        assert_eq!(
            exited
                .failure(Duration::from_millis(1200), || None)
                .unwrap(),
            "exited with code 3 after 1.2s"
        );
        let restarted = c(r#"{"State":{"Running":true,"ExitCode":1},"RestartCount":1}"#);
        assert_eq!(
            restarted.failure(Duration::ZERO, || Some(3)).unwrap(),
            "exited with code 3 and was restarted by docker within 0.0s"
        );
        let sick = c(
            r#"{"State":{"Running":true,"Health":{"Status":"unhealthy","Log":[{"Output":"nope\n"}]}},"RestartCount":0}"#,
        );
        assert_eq!(
            sick.failure(Duration::from_secs(2), || None).unwrap(),
            "reported unhealthy after 2.0s (health check: nope)"
        );
        assert!(valid_container_name("web-1.a_b") && !valid_container_name("-x"));
        assert!(!valid_container_name("a b") && !valid_container_name("w"));
        assert_eq!(short("sha256:0123456789abcdef"), "sha256:0123456789ab");
    }
}
