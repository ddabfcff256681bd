//! `register-dock IP [MONIKER]`: add a dock to the registry (`~/.docker/<ip>/`).
//!
//! The registry holds one dock per address (as 2.0.7): registering an address again
//! replaces its dock, and says which. Before writing, one ssh to the dock (BatchMode, 5 s
//! to connect, its own connection: nothing is left running) tells whether it answers
//! and whether its user can create its directory in the workspace, where `sync-up` puts
//! projects; what is wrong is a warning, not a failure (a dock may be registered before
//! it runs). The same call resolves a workspace in the dock user's home (`~/…`) to its
//! path there. `--no-check` skips it.

use crate::dock::session::Session;
use crate::dock::{self, DEFAULT_WORKSPACE, Dock};
use crate::error::{Error, Result};
use crate::plan::quote;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "register-dock",
    version,
    about = "Register a remote Docker host (a dock) by IP or hostname, with an optional moniker",
    after_help = "Examples:\n  register-dock 10.93.133.6 gpu-box\n  register-dock -u admin build.example.com builder\n  register-dock 10.93.133.6 gpu-box --workspace '~/workspaces'   # in the dock user's home\n  register-dock -i ~/.ssh/lab-key 10.0.0.8 lab\n  DOCK_USER=ec2-user register-dock 10.0.0.7 --no-check\n\nThen: source dock gpu-box, or (after `dockerutils ssh-config --install`) ssh gpu-box, docker --context gpu-box ps"
)]
pub(crate) struct Args {
    /// IP address or hostname of the dock
    pub ip: String,
    /// A short name to refer to the dock by
    pub moniker: Option<String>,
    /// The ssh user on the dock [default: $DOCK_USER, else ubuntu]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Where sync-up puts projects on the dock: an absolute path, or '~/DIR' (quoted) in
    /// the dock user's home [default: /data/workspaces]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<String>,
    /// Do not ssh to the dock to check that it answers and that the workspace can be
    /// written
    #[arg(long)]
    pub no_check: bool,
    /// The private key for ssh to the dock (stored as DOCK_IDENTITY) [default: ssh's own]
    #[arg(short = 'i', long, value_name = "FILE")]
    pub identity: Option<std::path::PathBuf>,
}

/// What registering did, for the user to read.
pub(crate) struct Registered {
    pub dock: Dock,
    /// The dock that was registered at this address before, now replaced.
    pub replaced: Option<Dock>,
    /// What the new registration kept of it (its moniker, its workspace), as words.
    pub kept: Vec<String>,
    /// Lines of `warning: …` / `hint: …` text: what the check found wrong.
    pub warnings: Vec<(String, Option<String>)>,
}

/// What one ssh to the dock found.
#[derive(Debug, PartialEq, Eq)]
enum Probe {
    /// It answered: the workspace (`~` resolved), and the directory that keeps the dock's
    /// user from creating `<workspace>/<user>`, if one does.
    Answered {
        workspace: String,
        blocked_by: Option<String>,
    },
    /// ssh could not connect or log in: its message.
    NoAnswer(String),
    /// It answered, but the check did not run through: what it said.
    Failed(String),
}

/// The check, run by `sh -c` as the dock user with builtins only (a dock user's PATH may
/// hold nothing), the workspace and the user its arguments `$1` and `$2`: resolve `~`,
/// then walk up from `<workspace>/<user>` to the first directory that exists, which must
/// be one the user can write. Nothing is created.
const PROBE: &str = r#"ws=$1; case $ws in "~") ws=$HOME ;; "~/"*) ws=$HOME/${ws#"~/"} ;; esac; d=$ws/$2; while [ ! -e "$d" ]; do d=${d%/*}; [ -n "$d" ] || d=/; done; printf '%s\n' "$ws"; if [ -d "$d" ] && [ -w "$d" ] && [ -x "$d" ]; then echo ok; else printf 'blocked %s\n' "$d"; fi"#;

fn probe(dock: &Dock, workspace: &str, user: &str) -> Result<Probe> {
    // Its own connection, not the shared one (which would outlive this command), and no
    // host key learned: registering forgets the address's old key, and the first real
    // connection learns the new one into the dock's known_hosts.
    let session = match Session::fresh(dock, std::time::Duration::from_secs(5)) {
        Ok(session) => session,
        Err(e) => return Ok(Probe::NoAnswer(e.to_string())),
    };
    let ran = session.run("sh", &["-c", PROBE, "probe", workspace, user]);
    session.close();
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => return Ok(Probe::NoAnswer(e.to_string())),
    };
    let mut lines = ran.stdout.lines();
    Ok(match (ran.code, lines.next(), lines.next()) {
        (None, _, _) => Probe::NoAnswer(ran.stderr),
        (Some(0), Some(ws), Some("ok")) => Probe::Answered {
            workspace: ws.to_string(),
            blocked_by: None,
        },
        (Some(0), Some(ws), Some(blocked)) if blocked.starts_with("blocked ") => Probe::Answered {
            workspace: ws.to_string(),
            blocked_by: Some(blocked["blocked ".len()..].to_string()),
        },
        _ if ran.stderr.is_empty() => Probe::Failed(format!("it printed: {}", ran.stdout.trim())),
        _ => Probe::Failed(ran.stderr),
    })
}

/// A workspace names a place on the dock: an absolute path, or one in the dock user's
/// home (`~`, `~/DIR`); a trailing `/` is dropped.
fn check_workspace(given: &str) -> Result<String> {
    let ws = match given.trim_end_matches('/') {
        "" if given.starts_with('/') => "/",
        ws => ws,
    };
    if ws.starts_with('/') || ws == "~" || ws.starts_with("~/") {
        Ok(ws.to_string())
    } else {
        Err(Error::Usage(format!(
            "--workspace {}: give an absolute path, or '~/DIR' (quoted, so that this shell \
             leaves it) for a directory in the dock user's home",
            quote(given)
        )))
    }
}

pub(crate) fn run(args: &Args) -> Result<Registered> {
    // Before anything is asked of the address or written under ~/.docker.
    dock::check_address(&args.ip)?;
    if let Some(moniker) = &args.moniker {
        dock::check_moniker(moniker)?;
    }
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("DOCK_USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "ubuntu".into());
    let dir = dock::registry_dir().join(&args.ip);
    // Registering an address again replaces its dock (one per address, as 2.0.7), but
    // what this registration does not say is kept: its moniker and workspace.
    let previous = std::fs::read_to_string(dir.join(dock::CONFIG_FILE))
        .ok()
        .and_then(|text| Dock::parse(&text, &dir));
    let mut kept = vec![];
    let moniker = match (&args.moniker, &previous) {
        (Some(m), _) => m.clone(),
        (None, Some(old)) if old.moniker != "none" && !old.moniker.is_empty() => {
            kept.push(format!("moniker {}", old.moniker));
            old.moniker.clone()
        }
        _ => "none".to_string(),
    };
    let given_workspace = match (&args.workspace, &previous) {
        (Some(ws), _) => Some(ws.clone()),
        (None, Some(old)) if old.extra.iter().any(|(k, _)| k == "DOCK_WORKSPACE") => {
            let ws = old.workspace().to_string();
            kept.push(format!("workspace {ws}"));
            Some(ws)
        }
        _ => None,
    };
    // A moniker names one dock: another address's is refused (which would `source dock`
    // pick?), in any case (one ssh Host).
    if moniker != "none"
        && let Some(other) = dock::moniker_taken(&moniker, Some(&args.ip))
    {
        let same = if other.moniker == moniker {
            String::new()
        } else {
            format!(" as `{}` (ssh Host names ignore case)", other.moniker)
        };
        return Err(Error::Usage(format!(
            "the moniker `{moniker}` already names the dock at {}{same} ({}): choose another \
                 moniker, or `unregister-dock {}` first",
            other.ip,
            other.destination(),
            other.ip
        )));
    }
    let workspace = given_workspace
        .as_deref()
        .map(check_workspace)
        .transpose()?;
    let mut dock = Dock {
        user,
        moniker,
        hostname: args.ip.clone(),
        ip: args.ip.clone(),
        extra: vec![],
        dir,
    };
    if let Some(ws) = &workspace {
        dock.extra.push(("DOCK_WORKSPACE".to_string(), ws.clone()));
    }
    if let Some(key) = &args.identity {
        dock.extra.push((
            "DOCK_IDENTITY".to_string(),
            crate::dock::ssh_config::identity(key)?,
        ));
    }
    // A moniker that is already a Host of the user's own ssh config: refused, nothing done.
    crate::dock::ssh_config::check_new(&dock)?;
    let in_home = workspace.as_deref().is_some_and(|ws| ws.starts_with('~'));
    let local_user = crate::project::user_name();
    let mut warnings = vec![];
    if args.no_check {
        if in_home {
            return Err(Error::Usage(format!(
                "--workspace {}: the dock user's home is known only by asking the dock, which \
                 --no-check does not: give the absolute path",
                quote(dock.workspace())
            )));
        }
    } else {
        match probe(&dock, dock.workspace(), &local_user)? {
            Probe::Answered {
                workspace: resolved,
                blocked_by,
            } => {
                if workspace.is_some() {
                    for (key, value) in &mut dock.extra {
                        if key == "DOCK_WORKSPACE" {
                            *value = resolved.clone();
                        }
                    }
                }
                if let Some(blocked) = blocked_by {
                    warnings.push((
                        format!(
                            "{} cannot create {} on {} ({} is not a directory it can write): \
                             sync-up would fail there",
                            dock.user,
                            quote(&format!("{}/{local_user}", dock.workspace())),
                            dock.ip,
                            quote(&blocked)
                        ),
                        Some(dock.workspace_hint(&local_user)),
                    ));
                }
            }
            Probe::NoAnswer(why) if in_home => {
                return Err(Error::Remote(format!(
                    "--workspace {}: the dock user's home is known only by asking the dock, \
                     and {} did not answer over ssh ({why}): give the absolute path, or \
                     register it when it answers",
                    quote(dock.workspace()),
                    dock.destination()
                )));
            }
            Probe::NoAnswer(why) => warnings.push((
                format!(
                    "{} cannot be reached over ssh ({}); registered all the same",
                    dock.destination(),
                    if why.is_empty() { "no message" } else { &why }
                ),
                Some(
                    "check the address, the user (-u) and that the dock runs sshd and \
                     accepts your key (ssh-agent or ~/.ssh); `register-dock … --no-check` \
                     registers without asking"
                        .into(),
                ),
            )),
            Probe::Failed(why) if in_home => {
                return Err(Error::Remote(format!(
                    "--workspace {}: resolving it on the dock failed: {why}; give the \
                     absolute path",
                    quote(dock.workspace())
                )));
            }
            Probe::Failed(why) => warnings.push((
                format!(
                    "{} answered, but the check of its workspace failed: {why}",
                    dock.destination()
                ),
                None,
            )),
        }
    }
    let replaced = previous;
    if let Some(old) = &replaced {
        // Its connection is logged in as the old user, and the new registration would
        // ride it.
        dock::close_connection(old);
    }
    dock::register(&dock)?;
    // A new machine at the same address has a new host key: learn it afresh.
    dock::forget_host_key(&dock);
    Ok(Registered {
        dock,
        replaced,
        kept,
        warnings,
    })
}

pub(crate) fn main(mut args: Args) -> i32 {
    // Host names are case-insensitive: one registry entry (one directory) per host.
    args.ip = args.ip.to_ascii_lowercase();
    match run(&args) {
        Ok(done) => {
            let dock = &done.dock;
            if let Some(old) = &done.replaced {
                println!(
                    "Replaced dock {} ({}): the registry holds one dock per address",
                    old.name(),
                    old.destination()
                );
                if !done.kept.is_empty() {
                    println!(
                        "Kept its {} (give them again to change them)",
                        done.kept.join(" and ")
                    );
                }
            }
            println!(
                "Registered dock {} ({}) in {}",
                dock.name(),
                dock.destination(),
                dock.dir.join(dock::CONFIG_FILE).display()
            );
            if dock.workspace() != DEFAULT_WORKSPACE {
                println!("sync-up puts projects in {} there", dock.workspace());
            }
            for (warning, hint) in &done.warnings {
                eprintln!("register-dock: warning: {warning}");
                if let Some(hint) = hint {
                    eprintln!("register-dock: hint: {hint}");
                }
            }
            crate::dock::hosts::after_change("register-dock", Some(dock));
            0
        }
        Err(e) => super::fail("register-dock", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Command;

    #[test]
    fn a_workspace_is_absolute_or_in_the_dock_users_home() {
        assert_eq!(check_workspace("/srv/ws/").unwrap(), "/srv/ws");
        assert_eq!(check_workspace("/").unwrap(), "/");
        assert_eq!(check_workspace("~/ws").unwrap(), "~/ws");
        assert_eq!(check_workspace("~").unwrap(), "~");
        for bad in ["ws", "./ws", "~other/ws", ""] {
            assert!(check_workspace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_check_walks_up_to_the_first_directory_that_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("my home's");
        std::fs::create_dir_all(home.join("ws")).unwrap();
        let run = |ws: &str| {
            let out = crate::process::output(
                Command::new("sh")
                    .args(["-c", PROBE, "probe", ws, "ann b"])
                    .env("HOME", &home),
            )
            .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        assert_eq!(run("~/ws"), format!("{}/ws\nok\n", home.display()));
        assert_eq!(run("~"), format!("{}\nok\n", home.display()));
        // A file where a directory would go: it blocks.
        std::fs::write(home.join("file"), "").unwrap();
        assert_eq!(
            run("~/file/x"),
            format!("{0}/file/x\nblocked {0}/file\n", home.display())
        );
    }
}
