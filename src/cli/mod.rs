//! The command line: the one table of commands (name, about, entry) from which dispatch,
//! `--list-commands`, usage, the clap definitions of completions and man pages are made,
//! and the multi-call entry that picks a command by the name the binary was invoked as.

pub mod completions;
pub mod definitions;
pub mod man;

use crate::commands;

/// A command's entry: its argv (its name first), its exit code.
pub type Main = fn(Vec<std::ffi::OsString>) -> i32;

/// The user commands, as installed (each name is a link to the one binary).
pub const COMMANDS: &[(&str, &str, Main)] = &[
    (
        "build-image",
        "build a project image (or all, or clean)",
        commands::build_image::main,
    ),
    (
        "run-image",
        "run a container of a project image",
        commands::run_image::main,
    ),
    (
        "run-notebook",
        "run Jupyter Lab on the project (docker/notebook or a default image)",
        commands::run_notebook::main,
    ),
    (
        "genversion",
        "write _version.py.bld with versioneer",
        commands::genversion::main,
    ),
    (
        "register-dock",
        "register a dock (a remote Docker host) by IP",
        commands::register_dock::main,
    ),
    (
        "unregister-dock",
        "remove a dock from the registry",
        commands::unregister_dock::main,
    ),
    (
        "dock-env",
        "print the shell code `source dock NAME` evaluates",
        commands::dock_env::main,
    ),
    (
        "ssh-dock",
        "open a shell on a dock",
        commands::ssh_dock::main,
    ),
    (
        "nb-dock",
        "Jupyter Lab on a dock through an ssh tunnel",
        commands::nb_dock::main,
    ),
    (
        "sync-up",
        "copy the project to the current dock",
        commands::sync::main_up,
    ),
    (
        "sync-down",
        "copy the project back from the current dock",
        commands::sync::main_down,
    ),
    (
        "transfer-image",
        "send an image to a dock over ssh, only the layers it lacks",
        commands::transfer_image::main,
    ),
    (
        "auto-build",
        "rebuild (and publish) the images whose inputs, branch or parent changed",
        commands::auto_build::main,
    ),
    (
        "publish-image",
        "push a project image to ECR or a registry (publication_tag)",
        commands::publish_image::main,
    ),
    (
        "deploy-image",
        "replace a service's container with the newest image; roll back if it fails",
        commands::deploy_image::main,
    ),
    (
        "serve-hooks",
        "redeploy services on Docker Hub webhooks and registry notifications",
        commands::serve_hooks::main,
    ),
    (
        "create-dock",
        "launch an EC2 instance as a dock and register it",
        commands::create_dock::main,
    ),
    (
        "start-dock",
        "start a dock's EC2 instance and wait for it",
        commands::start_dock::main,
    ),
    (
        "stop-dock",
        "stop a dock's EC2 instance",
        commands::stop_dock::main,
    ),
    (
        "destroy-dock",
        "terminate a dock's EC2 instance and unregister it",
        commands::destroy_dock::main,
    ),
    (
        "ls-dock",
        "list the registered docks and their instances' states",
        commands::ls_dock::main,
    ),
    (
        "ssh-config",
        "make docks ssh hosts and docker contexts for every tool (Include in ~/.ssh/config)",
        commands::ssh_config::main,
    ),
    (
        "init",
        "scaffold docker/<template>/Dockerfile, .dockerignore and dockerutils.cfg here",
        commands::init::main,
    ),
    (
        "completions",
        "print the shell code for TAB completion (bash, zsh, fish)",
        completions::main,
    ),
    (
        "man",
        "print a command's man page, or write them all",
        man::main,
    ),
];

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
    if let Some(code) = completions::try_complete(&argv) {
        return code;
    }
    // `init`, `completions`, `man`: only as `dockerutils <command>`.
    let linked = |name: &&str| !definitions::SUBCOMMANDS_ONLY.contains(name);
    if let Some((_, _, run)) = COMMANDS
        .iter()
        .find(|(name, _, _)| *name == invoked && linked(name))
    {
        return run(argv);
    }
    // The ssh shim that `source dock` puts first on PATH.
    if invoked == "ssh" {
        return crate::dock::ssh::shim_main(argv);
    }
    let sub = argv.get(1).map(|a| a.to_string_lossy().into_owned());
    match sub.as_deref() {
        // For install.sh: the names to link to this binary.
        Some("--list-commands") => {
            for name in definitions::linked_names() {
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
            if sub.is_none() {
                crate::error::USAGE
            } else {
                0
            }
        }
        Some(name) => match COMMANDS.iter().find(|(n, _, _)| *n == name) {
            Some((_, _, run)) => run(argv[1..].to_vec()),
            None => {
                eprintln!(
                    "dockerutils: error: unknown command `{name}`\n\n{}",
                    usage()
                );
                crate::error::USAGE
            }
        },
    }
}

fn usage() -> String {
    let mut out = format!(
        "dockerutils {}: project-convention tool for Docker\n\nUsage: dockerutils <COMMAND> [ARGS]...  (or each command by its own name)\n\nCommands:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, about, _) in COMMANDS {
        out.push_str(&format!("  {name:<16}{about}\n"));
    }
    out.push_str("\n`<COMMAND> --help` tells more about each.\n");
    out
}
