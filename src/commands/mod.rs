//! One file per user command, each with its `Args` (clap) and a `main`. Most build a
//! [`crate::plan::Plan`] from the project, the cfg and the flags, then print or run it
//! (those with a `plan` function expose it to the tests); the AWS commands plan an API
//! call instead, and the exceptions are listed in ARCHITECTURE.md.

pub mod auto_build;
pub mod build_image;
pub mod create_dock;
pub mod deploy_image;
pub mod destroy_dock;
pub mod dock_env;
pub mod genversion;
pub mod idle_stop;
pub mod ls_dock;
pub mod nb_dock;
pub mod publish_image;
pub mod register_dock;
pub mod run_image;
pub mod run_notebook;
pub mod serve_hooks;
pub mod ssh_config;
pub mod ssh_dock;
pub mod start_dock;
pub mod stop_dock;
pub mod sync;
pub mod transfer_image;
pub mod unregister_dock;

// dockerutils' own subcommands (`dockerutils init`, …) and the clap table behind them.
pub mod cli;
pub mod completions;
pub mod init;
pub mod man;

use crate::error::{self, Result};
use crate::plan::Plan;

/// A command's entry: its argv (its name first), its exit code.
pub type Main = fn(Vec<std::ffi::OsString>) -> i32;

/// The user commands, as installed (each name is a link to the one binary).
pub const COMMANDS: &[(&str, &str, Main)] = &[
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
        "run-notebook",
        "run Jupyter Lab on the project (docker/notebook or a default image)",
        run_notebook::main,
    ),
    (
        "genversion",
        "write _version.py.bld with versioneer",
        genversion::main,
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
        "nb-dock",
        "Jupyter Lab on a dock through an ssh tunnel",
        nb_dock::main,
    ),
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
    (
        "auto-build",
        "rebuild (and publish) the images whose inputs, branch or parent changed",
        auto_build::main,
    ),
    (
        "publish-image",
        "push a project image to ECR or a registry (publication_tag)",
        publish_image::main,
    ),
    (
        "deploy-image",
        "replace a service's container with the newest image; roll back if it fails",
        deploy_image::main,
    ),
    (
        "serve-hooks",
        "redeploy services on Docker Hub webhooks and registry notifications",
        serve_hooks::main,
    ),
    (
        "create-dock",
        "launch an EC2 instance as a dock and register it",
        create_dock::main,
    ),
    (
        "start-dock",
        "start a dock's EC2 instance and wait for it",
        start_dock::main,
    ),
    ("stop-dock", "stop a dock's EC2 instance", stop_dock::main),
    (
        "destroy-dock",
        "terminate a dock's EC2 instance and unregister it",
        destroy_dock::main,
    ),
    (
        "ls-dock",
        "list the registered docks and their instances' states",
        ls_dock::main,
    ),
    (
        "ssh-config",
        "make docks ssh hosts and docker contexts for every tool (Include in ~/.ssh/config)",
        ssh_config::main,
    ),
    (
        "idle-stop",
        "show or change when an EC2 dock stops itself for being unused",
        idle_stop::main,
    ),
    (
        "init",
        "scaffold docker/<template>/Dockerfile, .dockerignore and dockerutils.cfg here",
        init::main,
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

/// A command's exit code: its own, or its error's (reported the usual way).
pub fn exit_code(prog: &str, result: Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => fail(prog, &e),
    }
}

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

/// Asks before something that costs or destroys: yes with `-y`; at a terminal, the
/// user's answer; without a terminal and without `-y`, an error saying so.
pub fn confirm(question: &str, yes: bool) -> Result<bool> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(error::Error::Usage(format!(
            "stdin is not a terminal, so this cannot be asked: {question} Pass -y to confirm"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| error::Error::io("cannot read the answer", e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES"))
}
