//! One file per user command. Each has `Args` (clap), `plan(project, args, context)`
//! and a thin `main`.

pub mod build_image;
pub mod run_image;

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
];

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
