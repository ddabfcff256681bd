//! `sync-up` / `sync-down`: rsync the project to and from
//! the dock's copy of the project ([`Dock::code_dir`]: `<workspace>/<user>/code/<project>`,
//! the workspace /data/workspaces unless the dock was registered with `--workspace`),
//! honouring `.dockerignore` as 2.0.7.

use crate::context::Context;
use crate::dock::{self, Dock};
use crate::error::Result;
use crate::plan::{Explanation, Invocation, OnFailure, Plan, quote};
use clap::Parser;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Copy the project to (sync-up) or back from (sync-down) the current dock",
    after_help = "Examples (docked with `source dock NAME`):\n  sync-up                 # <workspace>/<user>/code/<project> on the dock\n  sync-down\n  sync-up --dock gpu-box  # without docking"
)]
pub struct Args {
    /// The dock [default: the current one]
    #[arg(long)]
    pub dock: Option<String>,
    /// Print the commands, run nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// The local directory to sync: the project root when inside a project, else here.
fn local_dir() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| ".".into());
    here.ancestors()
        .find(|d| d.join("docker").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or(here)
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
pub fn plan(dock: &Dock, direction: Direction, ctx: &Context) -> Plan {
    let local = local_dir();
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
            // The path is one word for the dock's shell, whatever it holds.
            let mut mkdir = crate::dock::ssh::to_dock(
                dock,
                false,
                &["mkdir".into(), "-p".into(), "--".into(), quote(&remote)],
            );
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
    plan
}

fn main_for(name: &str, direction: Direction, argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    let ctx = Context::from_process();
    let dock = match args.dock.as_deref() {
        None if dock::current().is_none() => Err(crate::error::Error::Usage(format!(
            "not docked: `source dock NAME` first, or name the dock: {name} --dock NAME"
        ))),
        given => dock::named_or_current(given),
    };
    let planned: Result<Plan> = dock.map(|d| plan(&d, direction, &ctx));
    let rc = super::finish(name, args.dry_run, planned);
    if rc == 0 && !args.dry_run {
        eprintln!("Sync complete");
    }
    rc
}

pub fn main_up(argv: Vec<std::ffi::OsString>) -> i32 {
    main_for("sync-up", Direction::Up, argv)
}

pub fn main_down(argv: Vec<std::ffi::OsString>) -> i32 {
    main_for("sync-down", Direction::Down, argv)
}
