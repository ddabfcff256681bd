//! `dockerutils ssh-config [--install | --uninstall | --sync]`: docks as hosts for every
//! ssh and docker tool. Shows (or adds, or removes) the one `Include` line in
//! `~/.ssh/config` that reads the generated config (`crate::dock::ssh_config`), and keeps that
//! config and the docks' docker contexts (`crate::dock::context`) in step with the
//! registry. [`sync`] is also what register-dock, unregister-dock, create-dock,
//! destroy-dock, start-dock and ls-dock call after they change (or read) the registry.

use crate::dock::context::{self as dock_context, Wanted};
use crate::dock::ssh_config::{self as cfg, Change, Generated};
use crate::dock::{self, Dock};
use crate::error::{self, Error, Result};
use clap::Parser;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ssh-config",
    version,
    about = "Make registered docks hosts for ssh, scp, rsync, VS Code and docker --context (one Include line in ~/.ssh/config)",
    after_help = "Examples:\n  dockerutils ssh-config               # what --install would change\n  dockerutils ssh-config --install     # then: ssh gpu-box, rsync -a . gpu-box:work/, docker --context gpu-box ps\n  dockerutils ssh-config --uninstall\n  dockerutils ssh-config --sync        # blocks and contexts for docks registered earlier (or by 2.0.7)\n\n\
The generated config (~/.docker/.dockerutils/ssh_config) has a Host block per dock, named by its \
moniker and its address, whose connection every ssh to the dock shares (ControlMaster, kept 10 \
minutes). register-dock, unregister-dock, create-dock, destroy-dock, start-dock and ls-dock keep \
it and the docks' docker contexts up to date."
)]
pub struct Args {
    /// Add the Include line at the top of ~/.ssh/config (made 0600 if missing; the old file
    /// is kept as ~/.ssh/config.dockerutils-backup)
    #[arg(long, group = "action")]
    pub install: bool,
    /// Remove the Include line (the file is left as it was before --install)
    #[arg(long, group = "action")]
    pub uninstall: bool,
    /// Write the generated ssh config and the docker contexts for every registered dock
    #[arg(long, group = "action")]
    pub sync: bool,
}

/// What holds after a [`sync`].
#[derive(Debug)]
pub struct Synced {
    /// The generated config, as written.
    pub generated: Generated,
    /// The docker context of each dock that has one, by the dock's directory.
    pub contexts: HashMap<PathBuf, String>,
    /// docker's current context.
    pub current_context: String,
}

/// Prints a warning the way errors are printed (`prog: warning: …`, then the hint).
fn warn(prog: &str, text: &str) {
    eprintln!("{prog}: warning: {text}");
}

fn warn_error(prog: &str, e: &Error) {
    warn(prog, &e.to_string());
    if let Some(hint) = e.hint() {
        eprintln!("{prog}: hint: {hint}");
    }
}

/// `ssh://host` for a docker endpoint (an IPv6 address in brackets).
fn ssh_url(user: Option<&str>, host: &str) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match user {
        Some(u) => format!("ssh://{u}@{host}"),
        None => format!("ssh://{host}"),
    }
}

/// The docker context each dock of the generated config should have: `ssh://<name>` when
/// ssh reads the Include (the block gives user, key and the shared connection), else
/// `ssh://user@address`.
pub fn wanted_contexts(
    generated: &Generated,
    active: bool,
) -> (Vec<(PathBuf, Wanted)>, Vec<String>) {
    let mut wanted = vec![];
    let mut warnings = vec![];
    for entry in &generated.entries {
        let d = &entry.dock;
        let name = entry.name();
        if !dock_context::valid_name(name) {
            warnings.push(format!(
                "dock {name}: no docker context, docker takes names of 2 or more letters, \
                 digits, `_`, `.`, `+`, `-`"
            ));
            continue;
        }
        let host = if active {
            ssh_url(None, name)
        } else {
            ssh_url(Some(&d.user), &d.ip)
        };
        wanted.push((
            d.dir.clone(),
            Wanted {
                name: name.to_string(),
                host,
                description: format!("{} {}", dock_context::MARK, d.destination()),
            },
        ));
    }
    (wanted, warnings)
}

/// Brings the generated ssh config and the docker contexts in step with the registry.
/// The docks left out of the config and failed docker calls are warnings (printed under
/// `prog`); an error is returned when the config cannot be read or written.
pub fn sync(prog: &str) -> Result<Synced> {
    let docks = dock::all();
    let user = cfg::UserHosts::load()?;
    let generated = cfg::write(&docks, &user)?;
    for s in &generated.skipped {
        warn(
            prog,
            &format!(
                "dock {} ({}) is not in {}: {}",
                s.dock.name(),
                s.dock.destination(),
                cfg::path().display(),
                s.why
            ),
        );
    }
    let (wanted, mut warnings) = wanted_contexts(&generated, cfg::active());
    let plain: Vec<Wanted> = wanted.iter().map(|(_, w)| w.clone()).collect();
    let (steps, taken) = dock_context::plan(&plain, &dock_context::existing());
    warnings.extend(taken);
    let mut failed: Vec<String> = vec![];
    for inv in &steps {
        eprintln!("{}", inv.display());
        let out = std::process::Command::new(&inv.program)
            .args(inv.argv())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let name = inv.args.get(2).map(|a| a.value.clone()).unwrap_or_default();
                failed.push(name);
                warnings.push(format!(
                    "`{}` failed: {}",
                    inv.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => {
                warnings.push(format!(
                    "no docker contexts for the docks: {}",
                    Error::spawn("docker", e)
                ));
                failed.extend(plain.iter().map(|w| w.name.clone()));
                break;
            }
        }
    }
    for w in &warnings {
        warn(prog, w);
    }
    let names: std::collections::HashSet<String> = dock_context::existing()
        .into_iter()
        .filter(|c| c.ours())
        .map(|c| c.name)
        .collect();
    let contexts = wanted
        .into_iter()
        .filter(|(_, w)| names.contains(&w.name) && !failed.contains(&w.name))
        .map(|(dir, w)| (dir, w.name))
        .collect();
    Ok(Synced {
        generated,
        contexts,
        current_context: dock_context::current(),
    })
}

/// After a command changed the registry: [`sync`], its failure a warning (the
/// registration is done; `--sync` retries), and, the first time, how to let every tool
/// use the docks.
pub fn after_change(prog: &str, dock: Option<&Dock>) {
    if let Err(e) = sync(prog) {
        warn_error(prog, &e);
        eprintln!("{prog}: hint: once fixed, `dockerutils ssh-config --sync` catches up");
    }
    let Some(dock) = dock else {
        return;
    };
    if cfg::installed() {
        return;
    }
    // Said once: a marker in ~/.docker/.dockerutils.
    let marker = cfg::own_dir().join("ssh-config-hint-shown");
    if marker.exists() {
        return;
    }
    let name = dock.name();
    println!(
        "To reach it as `{name}` from ssh, scp, rsync, VS Code Remote-SSH and `docker --context \
         {name}`, over one shared connection: dockerutils ssh-config --install \
         (adds one Include line to ~/.ssh/config; said once)"
    );
    let _ = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(marker)
    };
}

fn show(change: &Change) -> String {
    match change {
        Change::Nothing => String::new(),
        Change::Write { after: None, .. } => {
            "    (the file is deleted: --install created it)\n".into()
        }
        Change::Write {
            before,
            after: Some(after),
        } => {
            // The lines added or removed: the block is at the top, or lines anywhere.
            let b = String::from_utf8_lossy(before.as_deref().unwrap_or_default()).into_owned();
            let a = String::from_utf8_lossy(after).into_owned();
            let (long, short, sign) = if a.len() > b.len() {
                (a, b, "+")
            } else {
                (b, a, "-")
            };
            let mut rest: Vec<&str> = short.lines().collect();
            let mut out = String::new();
            for line in long.lines() {
                if let Some(pos) = rest.iter().position(|l| *l == line) {
                    rest.remove(pos);
                } else {
                    out.push_str(format!("    {sign} {line}").trim_end());
                    out.push('\n');
                }
            }
            out
        }
    }
}

fn reads_other_config_warning(prog: &str) {
    if !cfg::ssh_reads_user_config() {
        let other = cfg::passwd_home()
            .map(|h| h.join(".ssh/config").display().to_string())
            .unwrap_or_else(|| "another file".into());
        warn(
            prog,
            &format!(
                "ssh reads {other} (the home of your user account), not {} ($HOME): ssh and \
                 docker do not see this Include while HOME differs",
                cfg::user_config().display()
            ),
        );
    }
}

fn run(args: &Args) -> Result<i32> {
    let prog = "ssh-config";
    let user_file = cfg::user_config();
    let current = std::fs::read(&user_file).ok();
    if args.install {
        // A registered dock whose moniker is one of the user's own hosts would shadow it:
        // an error before anything changes.
        let user = cfg::UserHosts::load()?;
        let clashes: Vec<String> = dock::all()
            .iter()
            .filter(|d| d.moniker != "none")
            .filter_map(|d| {
                user.clash(&d.moniker)
                    .map(|h| format!("`{}` ({}:{})", d.moniker, h.file.display(), h.line))
            })
            .collect();
        if !clashes.is_empty() {
            return Err(Error::Usage(format!(
                "docks are registered under names that are already Hosts in your ssh config: \
                 {}; nothing was changed. Register those docks under other monikers \
                 (unregister-dock, register-dock IP OTHER) or rename your Hosts, then \
                 --install again",
                clashes.join(", ")
            )));
        }
        let change = cfg::install_change(current.as_deref())?;
        let backup = cfg::apply(&change, true)?;
        match (&change, backup) {
            (Change::Nothing, _) => println!(
                "{} already includes {}",
                user_file.display(),
                cfg::path().display()
            ),
            (_, backup) => {
                println!("{}:\n{}", user_file.display(), show(&change));
                if let Some(b) = backup {
                    println!("The file as it was: {}", b.display());
                }
            }
        }
        reads_other_config_warning(prog);
        sync(prog)?;
        if cfg::active() {
            println!(
                "Registered docks are now ssh hosts by moniker (ssh NAME, rsync … NAME:, \
                 docker --context NAME); `dockerutils ssh-config --uninstall` undoes it"
            );
        }
        return Ok(0);
    }
    if args.uninstall {
        let change = cfg::uninstall_change(current.as_deref())?;
        cfg::apply(&change, false)?;
        match &change {
            Change::Nothing => println!(
                "{} does not include {}: nothing to remove",
                user_file.display(),
                cfg::path().display()
            ),
            _ => println!("{}:\n{}", user_file.display(), show(&change)),
        }
        sync(prog)?;
        return Ok(0);
    }
    if args.sync {
        let generated = sync(prog)?.generated;
        println!(
            "{}: {} dock{} ({})",
            cfg::path().display(),
            generated.entries.len(),
            if generated.entries.len() == 1 {
                ""
            } else {
                "s"
            },
            generated
                .entries
                .iter()
                .map(|e| e.name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !cfg::installed() {
            println!(
                "Not included by {} yet: dockerutils ssh-config --install",
                user_file.display()
            );
        }
        return Ok(0);
    }
    // No flag: what is there and what --install would change, changing nothing.
    let generated = cfg::render(
        &dock::all(),
        &cfg::UserHosts::load()?,
        &dock::registry_dir(),
    );
    println!(
        "Generated ssh config: {} (docks: {})",
        cfg::path().display(),
        if generated.entries.is_empty() {
            "none registered".to_string()
        } else {
            generated
                .entries
                .iter()
                .map(|e| e.name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for s in &generated.skipped {
        println!(
            "  left out: {} ({}): {}",
            s.dock.name(),
            s.dock.destination(),
            s.why
        );
    }
    println!("Include line: {}", cfg::include_line()?);
    match cfg::install_change(current.as_deref())? {
        Change::Nothing => println!(
            "{}: includes it (`dockerutils ssh-config --uninstall` removes it)",
            user_file.display()
        ),
        change => {
            println!(
                "{}: does not include it; `dockerutils ssh-config --install` would {}:\n{}",
                user_file.display(),
                if current.is_some() {
                    "add at its top (keeping the file as it is in config.dockerutils-backup)"
                } else {
                    "create it (0600) with"
                },
                show(&change)
            );
        }
    }
    reads_other_config_warning(prog);
    Ok(0)
}

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            error::report("ssh-config", &e);
            e.exit_code()
        }
    }
}
