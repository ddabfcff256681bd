//! One file per user command. Each has `Args` (clap), `plan(project, args, context)`
//! and a thin `main`.

pub mod build_image;
pub mod dock_env;
pub mod register_dock;
pub mod run_image;
pub mod ssh_dock;
pub mod sync;
pub mod transfer_image;
pub mod unregister_dock;

use crate::error::{self, Result};
use crate::plan::Plan;

/// The user commands, as installed (each name is a link to the one binary).
pub const COMMANDS: &[(&str, &str, fn(Vec<std::ffi::OsString>) -> i32)] = &[
    (
        "build-image",
        "build a project image (or all, or clean)",
        build_image::main,
    ),
    (
        "run-image",
        "run a container of a project image",
        run_image::main,
    ),
    (
        "register-dock",
        "register a dock (a remote Docker host) by IP",
        register_dock::main,
    ),
    (
        "unregister-dock",
        "remove a dock from the registry",
        unregister_dock::main,
    ),
    (
        "dock-env",
        "print the shell code `source dock NAME` evaluates",
        dock_env::main,
    ),
    ("ssh-dock", "open a shell on a dock", ssh_dock::main),
    (
        "sync-up",
        "copy the project to the current dock",
        sync::main_up,
    ),
    (
        "sync-down",
        "copy the project back from the current dock",
        sync::main_down,
    ),
    (
        "transfer-image",
        "send an image to a dock over ssh, only the layers it lacks",
        transfer_image::main,
    ),
];

/// Reports an error the usual way and returns its exit code.
pub fn fail(prog: &str, err: &error::Error) -> i32 {
    error::report(prog, err);
    err.exit_code()
}

/// Prints the plan (`--dry-run`) or runs it; reports a planning error. Returns the exit code.
pub fn finish(prog: &str, dry_run: bool, planned: Result<Plan>) -> i32 {
    match planned {
        Err(e) => {
            error::report(prog, &e);
            e.exit_code()
        }
        Ok(plan) if dry_run => {
            print!("{}", plan.script());
            0
        }
        Ok(plan) => crate::exec::execute(prog, &plan),
    }
}
