//! The project to and from a dock: rsync between the project root and the dock's copy of
//! it ([`Dock::code_dir`]: `<workspace>/<user>/code/<project>`, the workspace
//! /data/workspaces unless the dock was registered with `--workspace`), honouring
//! `.dockerignore` as 2.0.7. sync-up, sync-down and a docked run-notebook run it.

use super::Dock;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::plan::{Explanation, Invocation, OnFailure, Plan, quote};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Up,
    Down,
}

/// The local directory to sync: the project root when inside a project, else here (as
/// 2.0.7 syncs the current directory), but never `/`, a directory right under it (`/tmp`,
/// `/home`) or the home directory: outside a project those are a mistyped `cd`, and the
/// copy would be everything under them (a walk synced 3.5 GB of /tmp).
fn local_dir(home: Option<&Path>) -> Result<PathBuf> {
    let here =
        std::env::current_dir().map_err(|e| Error::io("cannot read the current directory", e))?;
    if let Some(root) = here.ancestors().find(|d| d.join("docker").is_dir()) {
        return Ok(root.to_path_buf());
    }
    let top = here.parent().is_none_or(|p| p.parent().is_none());
    if top || home.is_some_and(|h| h == here) {
        return Err(Error::Usage(format!(
            "{} is no project (no docker/ directory in it or above) and is {}: a sync would \
             copy everything under it. cd into the project first",
            quote(&here.display().to_string()),
            if top {
                "a top-level directory"
            } else {
                "your home directory"
            }
        )));
    }
    Ok(here)
}

/// The steps of a sync (also used by run-notebook when docked).
///
/// Neither direction changes who owns a file or, coming down, its mode. rsync's `-a`
/// keeps the sender's owners when the receiver runs as root (`-o -g`): a sync-down by
/// root gave the project to the dock user's uid, which here may be anyone, and a dock
/// whose user is root got the local uids; so `--no-owner --no-group` both ways. Coming
/// down, `--no-perms` too: existing files and directories (the project root itself
/// included, the target of `remote/`) keep their modes, new ones get the dock's minus
/// the umask. Without `-o`, rsync run by root replaces each file it updates with a new
/// file of root's; `--inplace` (root only: any other user cannot open a read-only file
/// of theirs for writing) writes into the file instead, which keeps its owner; an
/// interrupted run leaves that one file half-written until the next (the other way,
/// the user's file would be root's for good). Going up,
/// the dock's copy takes the local modes (executables stay executable there).
pub(crate) fn plan(dock: &Dock, direction: Direction, ctx: &Context) -> Result<Plan> {
    let local = local_dir(dirs::home_dir().as_deref())?;
    let remote = dock.code_dir(&ctx.user, &local);
    let ssh_cmd = std::iter::once("ssh".to_string())
        .chain(dock.ssh_options())
        .chain(["-o".into(), "LogLevel=error".into()])
        .map(|w| quote(&w))
        .collect::<Vec<_>>()
        .join(" ");
    let has_ignore = local.join(".dockerignore").is_file();
    let mut plan = Plan::default();
    // -s: the paths go to the remote rsync through its protocol, not its shell, so a
    // project directory with spaces, quotes or `*?[` arrives as it is (an rsync older than
    // 3.2.4 escapes nothing, a newer one leaves the wildcards).
    let mut rsync = Invocation::new("rsync", local.clone()).args([
        "-az",
        "-s",
        "--no-owner",
        "--no-group",
        "-e",
        &ssh_cmd,
    ]);
    match direction {
        Direction::Up => {
            // The path is one word on the dock, whatever it holds.
            let mut mkdir = crate::dock::ssh::on_dock(dock, &["mkdir", "-p", "--", &remote]);
            mkdir.on_failure = OnFailure::Explain(Box::new(Explanation {
                code: 1,
                error: format!(
                    "{} cannot create {remote} on dock {}",
                    dock.user,
                    dock.name()
                ),
                hint: dock.workspace_hint(&ctx.user),
            }));
            plan.run(mkdir);
            if has_ignore {
                rsync = rsync.arg("--filter=:- .dockerignore");
            }
            rsync = rsync.args([
                format!("{}/", local.display()),
                format!("{}:{remote}/", dock.destination()),
            ]);
        }
        Direction::Down => {
            // A file changed here since the last sync-up is newer here than on the dock:
            // kept (rsync --update), not overwritten by the dock's older copy.
            rsync = rsync.args(["--no-perms", "--update"]);
            if ctx.superuser {
                rsync = rsync.arg("--inplace");
            }
            if has_ignore {
                rsync = rsync.arg("--filter=.- .dockerignore");
            }
            rsync = rsync.args([
                format!("{}:{remote}/", dock.destination()),
                format!("{}/", local.display()),
            ]);
        }
    }
    plan.run(rsync);
    Ok(plan)
}
