//! `dockerutils ssh-config [--install | --uninstall | --sync]`: docks as hosts for every
//! ssh and docker tool. Shows (or adds, or removes) the one `Include` line in
//! `~/.ssh/config` that reads the generated config (`crate::dock::ssh_config`), and keeps that
//! config and the docks' docker contexts (`crate::dock::context`) in step with the
//! registry. [`sync`] is also what register-dock, unregister-dock, create-dock,
//! destroy-dock, start-dock and ls-dock call after they change (or read) the registry.

use crate::dock;
use crate::dock::hosts::sync;
use crate::dock::ssh_config::{self as cfg, Change};
use crate::error::{self, Error, Result, warn};
use clap::Parser;

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
pub(crate) struct Args {
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

pub(crate) fn main(args: Args) -> i32 {
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            error::report("ssh-config", &e);
            e.exit_code()
        }
    }
}
