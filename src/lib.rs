//! dockerutils: a project-convention tool for Docker.
//!
//! Most commands turn (project, cfg, flags, context) into a [`plan::Plan`], a plain value
//! that `--dry-run` prints, tests inspect and [`exec`] runs. The ones that must react to
//! what they see are not yet in that shape: `transfer-image` streams through this
//! process, `deploy-image` runs its steps one at a time around a watch, `serve-hooks` is
//! a server (ARCHITECTURE.md, "Where the shape is not yet kept").

pub mod aws;
pub mod cfg;
pub mod chain;
pub mod commands;
pub mod compress;
pub mod context;
pub mod dock;
pub mod dock_cfg;
pub mod docker;
pub mod docker_context;
pub mod engine_store;
pub mod error;
pub mod exec;
pub mod expand;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz_entry;
pub mod logrotate;
pub mod notebook;
pub mod plan;
pub mod project;
pub mod ssh;
pub mod ssh_config;
pub mod tags;

use std::ffi::OsString;
use std::path::Path;

/// Multi-call entry: `build-image …` (a link named after the command) or
/// `dockerutils build-image …`.
pub fn main(argv: Vec<OsString>) -> i32 {
    let invoked = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // TAB in a shell that sourced `dockerutils completions <shell>`.
    if let Some(code) = commands::completions::try_complete(&argv) {
        return code;
    }
    // `init`, `completions`, `man`: only as `dockerutils <command>`.
    let linked = |name: &&str| !commands::cli::SUBCOMMANDS_ONLY.contains(name);
    if let Some((_, _, run)) = commands::COMMANDS
        .iter()
        .find(|(name, _, _)| *name == invoked && linked(name))
    {
        return run(argv);
    }
    // The ssh shim that `source dock` puts first on PATH.
    if invoked == "ssh" {
        return ssh::shim_main(argv);
    }
    let sub = argv.get(1).map(|a| a.to_string_lossy().into_owned());
    match sub.as_deref() {
        // For install.sh: the names to link to this binary.
        Some("--list-commands") => {
            for name in commands::cli::linked_names() {
                println!("{name}");
            }
            0
        }
        Some("-V" | "--version") => {
            println!("dockerutils {}", env!("CARGO_PKG_VERSION"));
            0
        }
        None | Some("-h" | "--help" | "help") => {
            print!("{}", usage());
            if sub.is_none() { error::USAGE } else { 0 }
        }
        Some(name) => match commands::COMMANDS.iter().find(|(n, _, _)| *n == name) {
            Some((_, _, run)) => run(argv[1..].to_vec()),
            None => {
                eprintln!(
                    "dockerutils: error: unknown command `{name}`\n\n{}",
                    usage()
                );
                error::USAGE
            }
        },
    }
}

fn usage() -> String {
    let mut out = format!(
        "dockerutils {}: project-convention tool for Docker\n\nUsage: dockerutils <COMMAND> [ARGS]...  (or each command by its own name)\n\nCommands:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, about, _) in commands::COMMANDS {
        out.push_str(&format!("  {name:<16}{about}\n"));
    }
    out.push_str("\n`<COMMAND> --help` tells more about each.\n");
    out
}
