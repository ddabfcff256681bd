//! Docks as hosts for every tool, kept in step with the registry: the generated ssh config
//! (`super::ssh_config`) and the docks' docker contexts (`super::context`) are rewritten
//! from the registry by [`sync`]; every command that changes the registry (register-,
//! unregister-, create-, destroy-, start-dock) calls [`after_change`], and ls-dock calls
//! [`sync`] before it lists.

use super::context::{self as dock_context, Wanted};
use super::ssh_config::{self as cfg, Generated};
use super::{self as dock, Dock};
use crate::error::{Error, Result, warn, warn_error};
use std::collections::HashMap;
use std::path::PathBuf;

/// What holds after a [`sync`].
#[derive(Debug)]
pub(crate) struct Synced {
    /// The generated config, as written.
    pub generated: Generated,
    /// The docker context of each dock that has one, by the dock's directory.
    pub contexts: HashMap<PathBuf, String>,
    /// docker's current context.
    pub current_context: String,
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
pub(crate) fn wanted_contexts(
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
pub(crate) fn sync(prog: &str) -> Result<Synced> {
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
        let out = crate::process::output(
            crate::process::Command::new(&inv.program)
                .args(inv.argv())
                .env_remove("DOCKER_HOST")
                .env_remove("DOCKER_CONTEXT"),
        );
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
pub(crate) fn after_change(prog: &str, dock: Option<&Dock>) {
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
