//! The container a cfg section describes: the `docker run` of a project image with its
//! section's options (docked variants, secrets out of argv, names retried on a clash,
//! `--log` pipelines). run-image, deploy-image and run-notebook run through it.

use crate::context::Context;
use crate::dock::{self, Dock};
use crate::engine;
use crate::error::{Error, Result};
use crate::plan::{
    Arg, EnvVar, Explanation, Invocation, LogTo, OnFailure, Plan, RunsImage, Step, quote,
};
use crate::project::Project;
use crate::project::cfg::keys;
use crate::project::expand;
use crate::service::logrotate::{DEFAULT_KEEP, DEFAULT_MAX_SIZE, MIN_KEEP};
use std::path::PathBuf;

/// How to run: the flags of `run-image` (deploy-image and run-notebook make one too).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Request {
    /// Image to run: a subdirectory of docker/ or a synthetic image of the cfg
    pub image: String,
    /// Extra `docker run` arguments (replaces the cfg's `args`)
    #[arg(
        short = 'a',
        long = "args",
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Option<String>,
    /// Keep the container: run it detached (-d), without --rm
    #[arg(short = 'k', long)]
    pub keep: bool,
    /// Command to run in the container (replaces the cfg's `cmd`)
    ///
    /// Split into words as a shell would, but run by none (as 2.0.7): for pipes, `;`,
    /// redirections or the container's variables, -c 'sh -c "…"'.
    #[arg(
        short = 'c',
        long = "command",
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Option<String>,
    /// Network to attach the container to (replaces the cfg's `network`)
    #[arg(short = 'n', long)]
    pub network: Option<String>,
    /// Start the container with GPU support (--runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all)
    #[arg(short = 'g', long = "use-gpu", visible_alias = "use_gpu")]
    pub use_gpu: bool,
    /// Environment variable for the container, KEY=value (or KEY to pass the host's value); repeatable
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// With `tag=timestamp`: run the newest build, pulled from the registry the image is
    /// published to when it is newer than any here (also `pull_latest=True`)
    #[arg(long)]
    pub latest: bool,
    #[command(flatten)]
    pub logging: LogArgs,
}

/// `--log [DIR]` and its sizes: the run's output to size-rotated files (`crate::service::logrotate`).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct LogArgs {
    /// Run without a terminal and wait, writing the output (stdout and stderr) to size-rotated files in DIR, framed by banners (default DIR: the cfg's log_dir, else <project_root>/logs/<IMAGE>)
    #[arg(
        long = "log",
        value_name = "DIR",
        num_args = 0..=1,
        value_hint = clap::ValueHint::DirPath,
        conflicts_with = "keep"
    )]
    pub log: Option<Option<PathBuf>>,
    /// With --log: largest size of a log file, in bytes (default: the cfg's log_max_size, else 1000000)
    #[arg(
        long = "log-size",
        value_name = "BYTES",
        requires = "log",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub log_size: Option<u64>,
    /// With --log: how many log files to keep, `current` included; older ones are removed (default: the cfg's log_keep, else 30)
    #[arg(
        long = "log-keep",
        value_name = "N",
        requires = "log",
        value_parser = at_least_min_keep
    )]
    pub log_keep: Option<u64>,
}

/// `--log-keep N`: a whole number of at least [`MIN_KEEP`], said plainly when it is not.
fn at_least_min_keep(value: &str) -> std::result::Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= MIN_KEEP => Ok(n),
        Ok(_) => Err(format!(
            "at least {MIN_KEEP} files are kept: `current` and the one before it"
        )),
        Err(_) => Err(format!("`{value}` is not a whole number")),
    }
}

/// AWS credentials passed into containers when present (not when docked, as the original).
pub(crate) const AWS_ENV: [&str; 6] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
];

pub(crate) const GPU_ARGS: [&str; 3] = ["--runtime=nvidia", "-e", "NVIDIA_VISIBLE_DEVICES=all"];

/// Does an environment variable's name say its value is a secret?
pub(crate) fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "CREDENTIAL",
        "PRIVATE",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|s| upper.contains(s))
}

/// The cfg section of one image, read with the `<key>_docked` rule.
struct Section<'a> {
    project: &'a Project,
    name: &'a str,
    docked: bool,
    ctx: &'a Context,
    /// Replacement variables that have no value here, and why.
    unavailable: Vec<(&'static str, String)>,
}

impl Section<'_> {
    /// `<key>_docked` when docked and present, else `<key>`.
    fn key(&self, key: &str) -> Result<Option<(String, String)>> {
        debug_assert!(
            keys::DOCKED.contains(&key),
            "{key}_docked is read: add {key} to cfg::keys::DOCKED"
        );
        let cfg = &self.project.cfg;
        if !cfg.has_section(self.name) {
            return Ok(None);
        }
        let docked_key = format!("{key}{}", keys::DOCKED_SUFFIX);
        if self.docked
            && let Some(v) = cfg.get(self.name, &docked_key)?
        {
            return Ok(Some((docked_key, v)));
        }
        Ok(cfg.get(self.name, key)?.map(|v| (key.to_string(), v)))
    }

    /// The key's words, each with `$VAR`s (and `{vars}` when given) replaced.
    fn words(&self, key: &str, vars: Option<&[(&str, &str)]>) -> Result<Vec<String>> {
        let Some((key, value)) = self.key(key)? else {
            return Ok(vec![]);
        };
        let err = |m: String| self.project.cfg.value_error(self.name, &key, m);
        let mut out = vec![];
        let unavailable: Vec<(&str, &str)> = self
            .unavailable
            .iter()
            .map(|(n, why)| (*n, why.as_str()))
            .collect();
        for word in crate::project::cfg::split_words(&value).map_err(err)? {
            let word = match vars {
                Some(vars) => expand::format_vars_or(&word, vars, &unavailable).map_err(err)?,
                None => word,
            };
            out.push(self.ctx.expand_env(&word).map_err(err)?);
        }
        Ok(out)
    }
}

/// Adds `docker run` words, with every `-e NAME=VALUE` (also `-eNAME=VALUE`,
/// `--env NAME=VALUE`, `--env=NAME=VALUE`) whose name says secret turned into `-e NAME`
/// and the value moved to docker's environment: out of argv (which `ps` shows to every
/// user) and masked where the command is printed, wherever the words come from (the
/// cfg's `environment=` and `args=`, or `-a`), as for `-e` and `env=` sections.
fn with_secrets_in_env(mut inv: Invocation, words: Vec<String>) -> Invocation {
    let mut words = words.into_iter().peekable();
    while let Some(word) = words.next() {
        let (flag, pair) = match word.as_str() {
            "-e" | "--env" => match words.peek() {
                Some(next) => (word.clone(), next.clone()),
                None => {
                    inv = inv.arg(word);
                    continue;
                }
            },
            w if w.starts_with("--env=") => ("--env".to_string(), w[6..].to_string()),
            w if w.starts_with("-e") && w.len() > 2 && !w.starts_with("--") => {
                ("-e".to_string(), w[2..].to_string())
            }
            _ => {
                inv = inv.arg(word);
                continue;
            }
        };
        let secret = pair
            .split_once('=')
            .filter(|(name, _)| !name.is_empty() && is_secret_name(name));
        match secret {
            Some((name, value)) => {
                if word == flag {
                    words.next();
                }
                inv.env.push(EnvVar {
                    name: name.to_string(),
                    value: value.to_string(),
                    secret: true,
                });
                inv = inv.arg(flag).arg(name.to_string());
            }
            None => inv = inv.arg(word),
        }
    }
    inv
}

fn cli_words(flag: &str, value: &str) -> Result<Vec<String>> {
    crate::project::cfg::split_words(value).map_err(|m| Error::Usage(format!("{flag}: {m}")))
}

/// How the container lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// run-image's: named `<user>_<image>_<time>`, `--rm` and a terminal unless kept, the
    /// caller's AWS credentials passed in.
    Run,
    /// A service (deploy-image): `-d --name NAME --restart unless-stopped`, no terminal, no
    /// AWS credentials of whoever deploys it; the rest of the section as run-image has it.
    Service { name: String },
}

impl Request {
    /// run-image's arguments for IMAGE without flags: the cfg section alone decides.
    pub(crate) fn section_only(image: &str) -> Request {
        Request {
            image: image.into(),
            args: None,
            keep: false,
            command: None,
            network: None,
            use_gpu: false,
            env: vec![],
            latest: false,
            logging: LogArgs::default(),
        }
    }
}

pub(crate) fn plan(project: &Project, args: &Request, ctx: &Context) -> Result<Plan> {
    let mut plan = Plan::default();
    let (mut inv, docked_mounts) = docker_run_and_mounts(project, args, &Lifecycle::Run, ctx)?;
    if let Some(mounts) = docked_mounts {
        plan.steps.push(mounts.check(project, args, ctx));
    }
    inv.image = Some(Box::new(RunsImage {
        reference: project.image_ref(&args.image)?.to_string(),
        subdir: project.subdir(&args.image)?,
    }));
    latest_steps(project, args, ctx, &mut plan, &mut inv)?;
    inv.log = log_to(project, args, ctx)?;
    plan.run(inv);
    Ok(plan)
}

/// `tag=timestamp`: with `--latest` (or `pull_latest=True`), the newest build in the
/// registry is pulled (and tagged as the project's image) when it is newer than any here,
/// and run; without a build here or there, an error that says what to do.
fn latest_steps(
    project: &Project,
    args: &Request,
    ctx: &Context,
    plan: &mut Plan,
    inv: &mut Invocation,
) -> Result<()> {
    let image = project.image_ref(&args.image)?;
    if image.tag != crate::engine::tags::TIMESTAMP {
        return Ok(());
    }
    let here = crate::engine::tags::newest_here(image.clone())?;
    let pull_latest = project.cfg.has_section(&args.image)
        && project
            .cfg
            .get_bool(&args.image, keys::PULL_LATEST)?
            .unwrap_or(false);
    let mut chosen = here.clone();
    if args.latest || pull_latest {
        let published = crate::project::publish::newest_published_tag(
            project,
            &args.image,
            ctx,
            &crate::aws::AwsArgs::default(),
        )?;
        if let Some((tag, pull)) = published {
            let newer = here.tag == crate::engine::tags::TIMESTAMP || here.tag < tag;
            if newer {
                chosen.tag = tag;
                plan.run(engine::docker(&project.root).args(["pull", &pull]));
                plan.run(engine::docker(&project.root).args(["tag", &pull, &chosen.to_string()]));
            }
        }
    }
    if chosen.tag == crate::engine::tags::TIMESTAMP {
        return Err(Error::Usage(format!(
            "no build of {} here ([{}] tag=timestamp): build-image {}, or run-image {} \
             --latest to pull the newest from the registry",
            image.name, args.image, args.image, args.image
        )));
    }
    let shown = here.to_string();
    for a in inv.args.iter_mut() {
        if a.value == shown {
            a.value = chosen.to_string();
            break;
        }
    }
    if let Some(runs) = &mut inv.image {
        runs.reference = chosen.to_string();
    }
    Ok(())
}

/// The bind sources (absolute paths) that a `volumes_docked` key mounts from the dock.
struct DockedMounts {
    /// The dock, if it is registered.
    dock: std::result::Result<Dock, String>,
    key: String,
    sources: Vec<String>,
}

impl DockedMounts {
    /// One ssh over the dock's shared connection, before anything starts: does every
    /// source exist? (`docker run -v` makes a missing one an empty directory of root's,
    /// and the container runs on nothing.) The paths go to the dock's shell quoted.
    fn check(&self, project: &Project, args: &Request, ctx: &Context) -> Step {
        let dock = match &self.dock {
            Ok(dock) => dock,
            Err(why) => {
                return Step::Say(format!(
                    "not checked that what [{}] {} mounts exists on the dock: {why}",
                    args.image, self.key
                ));
            }
        };
        let list: Vec<String> = self.sources.iter().map(|s| quote(s)).collect();
        let script = format!(
            "for p in {}; do [ -e \"$p\" ] || {{ echo \"missing on the dock: $p\" >&2; m=1; }}; \
             done; [ -z \"$m\" ] || exit 3",
            list.join(" ")
        );
        let mut inv = crate::dock::ssh::script_on_dock(dock, &script);
        inv.cwd = project.root.clone();
        let copy = dock.code_dir(&ctx.user, &project.root);
        let inside = |s: &String| s == &copy || s.starts_with(&format!("{copy}/"));
        let sync = format!(
            "`sync-up` copies the project to {} on the dock: run it first",
            quote(&copy)
        );
        let elsewhere = format!(
            "make it on the dock (`ssh-dock {}`), or change [{}] {} in {}",
            dock.name(),
            args.image,
            self.key,
            project.cfg.path().display()
        );
        let hint = if self.sources.iter().all(inside) {
            sync
        } else if self.sources.iter().any(inside) {
            format!("{sync}; a directory outside the project's copy: {elsewhere}")
        } else {
            elsewhere
        };
        inv.on_failure = OnFailure::Explain(Box::new(Explanation {
            code: 3,
            error: format!(
                "[{}] {} mounts a path that does not exist on dock {}: docker would create \
                 it as an empty directory, and the container would run on nothing",
                args.image,
                self.key,
                dock.name()
            ),
            hint,
        }));
        Step::Run(inv)
    }
}

/// The host paths that `-v SRC:DST`, `--volume`, and `--mount type=bind,source=SRC` words
/// mount, when absolute (a named volume is the engine's own).
fn bind_sources(words: &[String]) -> Vec<String> {
    let mut out = vec![];
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let w = word.as_str();
        let (volume, mount) = match w {
            "-v" | "--volume" => (words.next().map(String::as_str), None),
            "--mount" => (None, words.next().map(String::as_str)),
            _ => (
                w.strip_prefix("--volume=").or_else(|| {
                    w.strip_prefix("-v")
                        .filter(|v| !v.is_empty() && !w.starts_with("--"))
                }),
                w.strip_prefix("--mount="),
            ),
        };
        if let Some(spec) = volume {
            out.extend(spec.split(':').next().map(str::to_string));
        }
        if let Some(spec) = mount {
            let fields: Vec<(&str, &str)> = spec
                .split(',')
                .map(|f| f.split_once('=').unwrap_or((f, "")))
                .collect();
            let bind = fields.iter().any(|&(k, v)| k == "type" && v == "bind");
            let source = fields
                .iter()
                .find(|(k, _)| matches!(*k, "source" | "src"))
                .map(|(_, v)| v.to_string());
            if bind {
                out.extend(source);
            }
        }
    }
    out.retain(|s| s.starts_with('/'));
    out
}

/// `{dock_project_root}`: the project's copy on the dock this shell is docked to (the
/// directory `sync-up` keeps), with that dock; or why there is none.
fn docked_copy(project: &Project, ctx: &Context) -> std::result::Result<(Dock, String), String> {
    let Some(ip) = ctx.var("DOCKER_IP") else {
        return Err(
            "is the project's copy on a dock: it is known only when docked (`source dock NAME`)"
                .into(),
        );
    };
    let dock = dock::find(ip).map_err(|_| {
        format!(
            "needs the dock's registration, and DOCKER_IP={ip} is no registered dock \
             (`register-dock {ip} …`, then `source dock`)"
        )
    })?;
    let copy = dock.code_dir(&ctx.user, &project.root);
    Ok((dock, copy))
}

/// The `docker run` of an image with its section's options (and the flags of `args`).
pub(crate) fn docker_run(
    project: &Project,
    args: &Request,
    lifecycle: &Lifecycle,
    ctx: &Context,
) -> Result<Invocation> {
    docker_run_and_mounts(project, args, lifecycle, ctx).map(|(inv, _)| inv)
}

/// [`docker_run`], and what its `volumes_docked` mounts from the dock, if it uses that key.
fn docker_run_and_mounts(
    project: &Project,
    args: &Request,
    lifecycle: &Lifecycle,
    ctx: &Context,
) -> Result<(Invocation, Option<DockedMounts>)> {
    let mut valid = project.image_dirs()?;
    valid.extend(project.synthetic_images()?);
    Project::check_image(&args.image, &valid)?;
    let cfg = &project.cfg;
    let docked = ctx.docked();
    let copy = docked_copy(project, ctx);
    let mut section = Section {
        project,
        name: &args.image,
        docked,
        ctx,
        unavailable: vec![],
    };
    if let Err(why) = &copy {
        section.unavailable.push(("dock_project_root", why.clone()));
    }
    // `tag=timestamp`: the newest build here (run-image's plan handles --latest).
    let image = crate::engine::tags::newest_here(project.image_ref(&args.image)?)?;

    let mut inv = match lifecycle {
        // 2.0.7's name, by the second: another run started in the same second has it, so
        // exec tries NAME_2, NAME_3, … when docker refuses it (no docker call to check it
        // first, and no race between two that check).
        Lifecycle::Run => {
            let mut inv = engine::docker(&project.root).args(["run", "--init", "--name"]);
            inv.unique_name = Some(inv.args.len());
            inv.arg(format!("{}_{}_{}", ctx.user, args.image, ctx.timestamp()))
        }
        Lifecycle::Service { name } => engine::docker(&project.root)
            .args(["run", "-d", "--name", name])
            .args(["--restart", "unless-stopped", "--init"]),
    };

    // Environment: the cfg's `environment` words, then `-e` pairs (command line first, then
    // the section named by `env=`; the command line wins), then AWS credentials.
    inv = with_secrets_in_env(inv, section.words(keys::ENVIRONMENT, None)?);
    let mut pairs: Vec<(String, Option<String>)> = vec![];
    for given in &args.env {
        let (k, v) = match given.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (given.clone(), None),
        };
        if k.is_empty() {
            return Err(Error::Usage(format!(
                "-e/--env takes KEY=value, not `{given}`"
            )));
        }
        pairs.push((k, v));
    }
    if let Some((key, env_section)) = section.key(keys::ENV)? {
        let keys = cfg.keys(&env_section).ok_or_else(|| {
            cfg.value_error(
                &args.image,
                &key,
                format!(
                    "names the section [{env_section}], which {} does not have",
                    cfg.path().display()
                ),
            )
        })?;
        for k in keys {
            if pairs.iter().any(|(p, _)| p == k) {
                continue;
            }
            let value = cfg.get(&env_section, k)?.unwrap_or_default();
            let value = ctx
                .expand_env(&value)
                .map_err(|m| cfg.value_error(&env_section, k, m))?;
            pairs.push((k.to_string(), Some(value)));
        }
    }
    for (k, v) in pairs {
        inv = inv.arg("-e");
        match v {
            // Secrets travel in docker's environment, not in its argv (which `ps` shows).
            Some(v) if is_secret_name(&k) => {
                inv = inv.arg(k.clone());
                inv.env.push(EnvVar {
                    name: k,
                    value: v,
                    secret: true,
                });
            }
            Some(v) => inv = inv.arg(format!("{k}={v}")),
            None => inv = inv.arg(k),
        }
    }
    if !docked && *lifecycle == Lifecycle::Run {
        for name in AWS_ENV {
            if ctx.var(name).is_some() {
                // `-e NAME`: docker takes the value from its own environment.
                inv = inv.args(["-e", name]);
            }
        }
    }

    if *lifecycle == Lifecycle::Run {
        if !args.keep {
            inv = inv.arg("--rm");
        }
        let interactive = if args.keep {
            vec!["-d".to_string()]
        } else if args.logging.log.is_some() {
            // A logged run: no terminal, stdin not attached.
            vec![]
        } else {
            match section.key(keys::INTERACTIVE)? {
                Some(_) => section.words(keys::INTERACTIVE, None)?,
                None => vec!["-it".to_string()],
            }
        };
        inv = inv.args(tty_rule(interactive, ctx.stdin_is_tty));
    }

    if args.use_gpu {
        inv = inv.args(GPU_ARGS);
    } else {
        inv = inv.args(section.words(keys::GPU, None)?);
    }
    // -n is taken as typed (the shell has expanded it); the cfg's value gets $VARs.
    let network = match &args.network {
        Some(n) if !n.is_empty() => Some(n.clone()),
        _ => match section.key(keys::NETWORK)? {
            Some((key, v)) => Some(
                ctx.expand_env(&v)
                    .map_err(|m| cfg.value_error(&args.image, &key, m))?,
            ),
            None => None,
        },
    };
    if let Some(network) = network {
        inv = inv.args(["--network".to_string(), network]);
    }

    let root = project.root.to_string_lossy();
    let dir_name = project.dir_name();
    let mut vars: Vec<(&str, &str)> = vec![
        ("project_root", &root),
        ("user", &ctx.user),
        ("project", &dir_name),
        ("home", &ctx.home),
    ];
    if let Ok((_, copy)) = &copy {
        vars.push(("dock_project_root", copy));
    }
    let volumes = section.words(keys::VOLUMES, Some(&vars))?;
    let mut docked_mounts = None;
    if let Some((key, _)) = section
        .key(keys::VOLUMES)?
        .filter(|(k, _)| k.ends_with("_docked"))
    {
        let sources = bind_sources(&volumes);
        if !sources.is_empty() {
            docked_mounts = Some(DockedMounts {
                dock: copy.clone().map(|(dock, _)| dock).map_err(|_| {
                    format!(
                        "DOCKER_IP={} is no registered dock",
                        ctx.var("DOCKER_IP").unwrap_or_default()
                    )
                }),
                key,
                sources,
            });
        }
    }
    inv = inv.args(volumes);
    inv = inv.args(section.words(keys::PORTS, None)?);
    match &args.args {
        Some(a) => inv = with_secrets_in_env(inv, cli_words("-a/--args", a)?),
        None => inv = with_secrets_in_env(inv, section.words(keys::ARGS, None)?),
    }
    inv = inv.arg(image.to_string());
    match &args.command {
        Some(c) => inv = inv.args(cli_words("-c/--command", c)?),
        None => inv = inv.args(section.words(keys::CMD, None)?),
    }
    Ok((inv, docked_mounts))
}

/// `--log [DIR]`: where the run's output goes. DIR from the flag (relative to the current
/// directory), else the section's `log_dir` (`{project_root}`, `{user}`, `{project}`,
/// `{home}`, `{image}` and `$VAR`s replaced; relative to the project root), else
/// `<project_root>/logs/<IMAGE>`; sizes from the flags, else `log_max_size` and `log_keep`,
/// else multilog's `s1000000 n30`. No `_docked` variants: the log is written here.
fn log_to(project: &Project, args: &Request, ctx: &Context) -> Result<Option<LogTo>> {
    let Some(given) = &args.logging.log else {
        return Ok(None);
    };
    let cfg = &project.cfg;
    let name = args.image.as_str();
    let dir = match given {
        Some(dir) => std::path::absolute(dir)
            .map_err(|e| Error::io(format!("--log {}", dir.display()), e))?,
        None => match cfg.get(name, keys::LOG_DIR)? {
            Some(value) => {
                let err = |m: String| cfg.value_error(name, keys::LOG_DIR, m);
                let root = project.root.to_string_lossy();
                let dir_name = project.dir_name();
                let vars: [(&str, &str); 5] = [
                    ("project_root", &root),
                    ("user", &ctx.user),
                    ("project", &dir_name),
                    ("home", &ctx.home),
                    ("image", name),
                ];
                let value = expand::format_vars(value.trim(), &vars).map_err(err)?;
                let value = ctx.expand_env(&value).map_err(err)?;
                if value.is_empty() {
                    return Err(err("is empty; give a directory, or remove the key".into()));
                }
                project.root.join(value)
            }
            None => project.root.join("logs").join(name),
        },
    };
    let number = |flag: Option<u64>, key: &str, default: u64, min: u64| -> Result<u64> {
        if let Some(n) = flag {
            return Ok(n);
        }
        match cfg.get(name, key)? {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(cfg.value_error(
                    name,
                    key,
                    format!("`{v}` is not a whole number of at least {min}"),
                )),
            },
        }
    };
    Ok(Some(LogTo {
        dir,
        max_size: number(
            args.logging.log_size,
            keys::LOG_MAX_SIZE,
            DEFAULT_MAX_SIZE,
            1,
        )?,
        keep: number(
            args.logging.log_keep,
            keys::LOG_KEEP,
            DEFAULT_KEEP,
            MIN_KEEP,
        )?,
        image: project.image_ref(name)?.to_string(),
    }))
}

/// `-t` needs a terminal on stdin: without one (cron, CI, a pipe) docker refuses with
/// "the input device is not a TTY", so the flag is dropped and `-i` kept.
pub(crate) fn tty_rule(words: Vec<String>, stdin_is_tty: bool) -> Vec<Arg> {
    words
        .into_iter()
        .filter_map(|w| {
            if stdin_is_tty {
                return Some(w);
            }
            match w.as_str() {
                "-t" | "--tty" => None,
                "-it" | "-ti" => Some("-i".to_string()),
                _ => Some(w),
            }
        })
        .map(Arg::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_flags_need_a_terminal() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let shown = |a: Vec<Arg>| a.into_iter().map(|a| a.value).collect::<Vec<_>>();
        assert_eq!(shown(tty_rule(w(&["-it"]), false)), w(&["-i"]));
        assert_eq!(
            shown(tty_rule(w(&["-i", "-t", "--tty"]), false)),
            w(&["-i"])
        );
        assert_eq!(shown(tty_rule(w(&["-it"]), true)), w(&["-it"]));
    }

    #[test]
    fn finds_the_absolute_bind_sources_of_volume_words() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            bind_sources(&w(&[
                "-v",
                "/ws/my proj:/app:ro",
                "-v",
                "named:/data",
                "--volume=/etc/x.conf:/x.conf",
                "-v/short:/s",
                "--mount",
                "type=bind,source=/m b,target=/m",
                "--mount=type=volume,src=/not-a-bind,dst=/v",
                "--mount",
                "type=bind,src=/src2,dst=/d",
                "-e",
                "X=/not/a/volume:/x",
            ])),
            w(&["/ws/my proj", "/etc/x.conf", "/short", "/m b", "/src2"])
        );
        assert!(bind_sources(&w(&["-v", "relative:/x", "--volume"])).is_empty());
    }

    #[test]
    fn secrets_in_cfg_words_leave_argv() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let inv = with_secrets_in_env(
            Invocation::new("docker", "/p".into()),
            w(&[
                "-e",
                "DB_PASSWORD=hunter2",
                "-eAPI_TOKEN=t0k",
                "--env=MY_SECRET=s3",
                "--env",
                "LOG_LEVEL=debug",
                "-e",
                "GITHUB_TOKEN",
                "-p",
                "80:80",
            ]),
        );
        assert_eq!(
            inv.argv(),
            [
                "-e",
                "DB_PASSWORD",
                "-e",
                "API_TOKEN",
                "--env",
                "MY_SECRET",
                "--env",
                "LOG_LEVEL=debug",
                "-e",
                "GITHUB_TOKEN",
                "-p",
                "80:80"
            ]
        );
        let env: Vec<(&str, &str, bool)> = inv
            .env
            .iter()
            .map(|e| (e.name.as_str(), e.value.as_str(), e.secret))
            .collect();
        assert_eq!(
            env,
            [
                ("DB_PASSWORD", "hunter2", true),
                ("API_TOKEN", "t0k", true),
                ("MY_SECRET", "s3", true)
            ]
        );
        let shown = inv.display();
        assert!(
            !shown.contains("hunter2") && !shown.contains("t0k") && !shown.contains("s3"),
            "{shown}"
        );
    }

    #[test]
    fn secret_names() {
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "github_token",
            "STRIPE_API_KEY",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["LOG_LEVEL", "PYTHONPATH", "KEYBOARD"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
