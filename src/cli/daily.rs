//! The daily binary, `dockerutils-daily` (src/bin/): `build-image` and `run-image`, the
//! commands of the edit-build-run loop, linked to it by install.sh.
//!
//! Why a second binary: the full one carries the AWS SDK, TLS and an async runtime, whose
//! ~54 000 relative relocations the loader applies at every start (the binary is a PIE,
//! for ASLR; build.rs), ~0.9 ms and ~230 page faults before `main`. This one is linked
//! from the same library with only what these two commands reach, and starts ~1.3 ms
//! sooner (BENCHMARKS.md, "Start-up"). What they reach only rarely and needs the
//! network clients (`run-image --latest`: the newest tag in ECR or a registry) is not
//! linked in: such a run is handed, whole and before anything has run, to the full
//! binary next to this one; so are completion requests and any other name.

use crate::commands::{build_image, run_image};
use clap::{FromArgMatches, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// The commands this binary serves itself: variants of `super::Cmd` (a test checks that
/// each is one, with the same definition), so that only their code is linked here.
#[derive(Subcommand)]
enum Daily {
    #[command(name = "build-image")]
    BuildImage(build_image::Args),
    #[command(name = "run-image")]
    RunImage(run_image::Args),
}

impl Daily {
    fn run(self) -> i32 {
        match self {
            Daily::BuildImage(a) => build_image::main(a),
            Daily::RunImage(a) => run_image::main(a),
        }
    }
}

/// The names of the daily commands.
fn names() -> Vec<String> {
    Daily::augment_subcommands(clap::Command::new("dockerutils-daily"))
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The name of the full binary, next to this one.
const FULL: &str = "dockerutils";

pub fn daily_main(argv: Vec<OsString>) -> i32 {
    let invoked = super::invoked_name(&argv);
    let completing =
        std::env::var_os(super::completions::VAR).is_some_and(|v| !v.is_empty() && v != "0");
    if !completing && Daily::has_subcommand(&invoked) {
        crate::project::publish::set_lookup(|_, _, _, _| Err(hand_over(&original_argv())));
        let root = Daily::augment_subcommands(clap::Command::new("dockerutils").multicall(true));
        let matches = root.get_matches_from(argv);
        return match Daily::from_arg_matches(&matches) {
            Ok(daily) => daily.run(),
            Err(e) => e.exit(),
        };
    }
    // For install.sh: the names to link to this binary.
    if argv.get(1).is_some_and(|a| a == "--list-commands") {
        for name in names() {
            println!("{name}");
        }
        return 0;
    }
    let e = hand_over(&argv);
    eprintln!("{invoked}: error: {e}");
    1
}

/// This process's own argv (what a hand-over from deep in a command runs again).
fn original_argv() -> Vec<OsString> {
    std::env::args_os().collect()
}

/// Runs `argv` with the full binary in this process's place (exec: same pid, same
/// terminal, its exit code is ours). Returns only if that cannot be done, with why.
fn hand_over(argv: &[OsString]) -> crate::error::Error {
    let full = match full_binary() {
        Ok(full) => full,
        Err(e) => return e,
    };
    let mut command = crate::process::Command::new(&full);
    command.arg0(argv.first().cloned().unwrap_or_else(|| FULL.into()));
    command.args(argv.iter().skip(1));
    let e = crate::process::replace(&mut command);
    crate::error::Error::Tool(format!("cannot run {}: {e}", full.display()))
}

/// The full binary: beside this one (install.sh puts both in one directory, cargo builds
/// both into one).
fn full_binary() -> crate::error::Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| crate::error::Error::io("cannot tell where this binary is", e))?;
    let full = exe.with_file_name(FULL);
    if full.is_file() {
        Ok(full)
    } else {
        Err(crate::error::Error::Tool(format!(
            "{} is not there, next to {}: install both with `bash install.sh`",
            full.display(),
            exe.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daily commands are commands of the list, linked under their names, with the
    /// same definitions (a second list, but one that cannot drift from the first).
    #[test]
    fn the_daily_commands_are_the_lists_own() {
        let root = Daily::augment_subcommands(clap::Command::new("dockerutils-daily"));
        for daily in root.get_subcommands() {
            let name = daily.get_name();
            let entry = super::super::entry(name).expect("a command of the list");
            assert!(!entry.subcommand_only, "{name} is linked");
            assert_eq!(
                daily.clone().render_long_help().to_string(),
                entry.command().render_long_help().to_string(),
                "{name}"
            );
        }
        assert_eq!(names(), ["build-image", "run-image"]);
    }
}
