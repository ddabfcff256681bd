//! The command line: the one list of commands, [`Cmd`] (a clap `Subcommand` enum: each
//! variant a command's `Args`), from which dispatch (a multi-call parse: the command is
//! the name the binary was invoked as, or `dockerutils <command>`), `--list-commands`,
//! usage, completions and man pages are made; one about text per command, its clap one.

mod completions;
mod daily;
mod definitions;
mod man;

pub use daily::daily_main;

use crate::commands::{
    auto_build, build_image, create_dock, deploy_image, destroy_dock, dock_env, genversion,
    idle_stop, init, ls_dock, nb_dock, publish_image, register_dock, run_image, run_notebook,
    serve_hooks, ssh_config, ssh_dock, start_dock, stop_dock, sync, transfer_image,
    unregister_dock,
};
use clap::{FromArgMatches, Subcommand};
use definitions::{Images, man_page_completer, with_docks, with_images};

/// Every command, in the order usage and the man page list them.
#[derive(Subcommand)]
enum Cmd {
    #[command(name = "build-image")]
    BuildImage(build_image::Args),
    #[command(name = "run-image")]
    RunImage(run_image::Args),
    #[command(name = "run-notebook")]
    RunNotebook(run_notebook::Args),
    #[command(name = "genversion")]
    Genversion(genversion::Args),
    #[command(name = "register-dock")]
    RegisterDock(register_dock::Args),
    #[command(name = "unregister-dock")]
    UnregisterDock(unregister_dock::Args),
    #[command(name = "dock-env")]
    DockEnv(dock_env::Args),
    #[command(name = "ssh-dock")]
    SshDock(ssh_dock::Args),
    #[command(name = "nb-dock")]
    NbDock(nb_dock::Args),
    #[command(
        name = "sync-up",
        about = "Copy the project (its root, found from any subdirectory) to the current dock"
    )]
    SyncUp(sync::Args),
    #[command(
        name = "sync-down",
        about = "Copy the project back from the current dock (files newer here are kept)"
    )]
    SyncDown(sync::Args),
    #[command(name = "transfer-image")]
    TransferImage(transfer_image::Args),
    #[command(name = "auto-build")]
    AutoBuild(auto_build::Args),
    #[command(name = "publish-image")]
    PublishImage(publish_image::Args),
    #[command(name = "deploy-image")]
    DeployImage(deploy_image::Args),
    #[command(name = "serve-hooks")]
    ServeHooks(serve_hooks::Args),
    #[command(name = "create-dock")]
    CreateDock(create_dock::Args),
    #[command(name = "start-dock")]
    StartDock(start_dock::Args),
    #[command(name = "stop-dock")]
    StopDock(stop_dock::Args),
    #[command(name = "destroy-dock")]
    DestroyDock(destroy_dock::Args),
    #[command(name = "ls-dock")]
    LsDock(ls_dock::Args),
    #[command(name = "ssh-config")]
    SshConfig(ssh_config::Args),
    #[command(name = "idle-stop")]
    IdleStop(idle_stop::Args),
    #[command(name = "init")]
    Init(init::Args),
    #[command(name = "completions")]
    Completions(completions::Args),
    #[command(name = "man")]
    Man(man::Args),
}

impl Cmd {
    /// Runs the command; its exit code.
    fn run(self) -> i32 {
        use crate::commands as c;
        match self {
            Cmd::BuildImage(a) => c::build_image::main(a),
            Cmd::RunImage(a) => c::run_image::main(a),
            Cmd::RunNotebook(a) => c::run_notebook::main(a),
            Cmd::Genversion(a) => c::genversion::main(a),
            Cmd::RegisterDock(a) => c::register_dock::main(a),
            Cmd::UnregisterDock(a) => c::unregister_dock::main(a),
            Cmd::DockEnv(a) => c::dock_env::main(a),
            Cmd::SshDock(a) => c::ssh_dock::main(a),
            Cmd::NbDock(a) => c::nb_dock::main(a),
            Cmd::SyncUp(a) => c::sync::main_up(a),
            Cmd::SyncDown(a) => c::sync::main_down(a),
            Cmd::TransferImage(a) => c::transfer_image::main(a),
            Cmd::AutoBuild(a) => c::auto_build::main(a),
            Cmd::PublishImage(a) => c::publish_image::main(a),
            Cmd::DeployImage(a) => c::deploy_image::main(a),
            Cmd::ServeHooks(a) => c::serve_hooks::main(a),
            Cmd::CreateDock(a) => c::create_dock::main(a),
            Cmd::StartDock(a) => c::start_dock::main(a),
            Cmd::StopDock(a) => c::stop_dock::main(a),
            Cmd::DestroyDock(a) => c::destroy_dock::main(a),
            Cmd::LsDock(a) => c::ls_dock::main(a),
            Cmd::SshConfig(a) => c::ssh_config::main(a),
            Cmd::IdleStop(a) => c::idle_stop::main(a),
            Cmd::Init(a) => c::init::main(a),
            Cmd::Completions(a) => completions::main(a),
            Cmd::Man(a) => man::main(a),
        }
    }
}

/// Only `dockerutils <name>`, never linked under their own names (a command called
/// `init`, `man`, `ssh-config` or `idle-stop` on PATH would be a trap).
const SUBCOMMAND_ONLY: &[&str] = &["ssh-config", "idle-stop", "init", "completions", "man"];

/// Is `name` a command linked under its own name?
fn is_linked(name: &str) -> bool {
    Cmd::has_subcommand(name) && !SUBCOMMAND_ONLY.contains(&name)
}

/// One command as help, completions and man pages see it.
pub(crate) struct Entry {
    pub name: String,
    /// Its clap definition, with the completers of its image and dock arguments.
    command: clap::Command,
    pub subcommand_only: bool,
}

impl Entry {
    /// The clap command, named as installed.
    pub(crate) fn command(&self) -> clap::Command {
        self.command.clone()
    }

    /// Its one-line description: the clap definition's `about`.
    pub(crate) fn about(&self) -> String {
        self.command
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

/// Every command of [`Cmd`], in its order.
pub(crate) fn entries() -> Vec<Entry> {
    Cmd::augment_subcommands(clap::Command::new("dockerutils"))
        .get_subcommands()
        .map(|c| {
            let name = c.get_name().to_string();
            Entry {
                command: with_completers(&name, c.clone()),
                subcommand_only: SUBCOMMAND_ONLY.contains(&name.as_str()),
                name,
            }
        })
        .collect()
}

/// The command `name`.
pub(crate) fn entry(name: &str) -> Option<Entry> {
    entries().into_iter().find(|e| e.name == name)
}

/// `command` with the completers of its image and dock arguments.
fn with_completers(name: &str, command: clap::Command) -> clap::Command {
    match name {
        "build-image" => with_images(command, "image", Images::Build),
        "run-image" | "deploy-image" => with_images(command, "image", Images::Run),
        "auto-build" => with_images(command, "images", Images::Dirs),
        "publish-image" => with_images(command, "image", Images::Dirs),
        "unregister-dock" | "dock-env" | "nb-dock" | "start-dock" | "stop-dock"
        | "destroy-dock" | "idle-stop" => with_docks(command, "name"),
        // clap numbers the `last` COMMAND argument before NAME, and the completion engine
        // takes positionals by number: NAME is made the first explicitly.
        "ssh-dock" => with_docks(command, "name")
            .mut_arg("name", |a| a.index(1))
            .mut_arg("command", |a| a.index(2)),
        "sync-up" | "sync-down" => with_docks(command, "dock"),
        // As for ssh-dock: the positionals numbered explicitly once their completers are in.
        "transfer-image" => with_images(
            with_docks(with_docks(command, "dest"), "from"),
            "image",
            Images::Dirs,
        )
        .mut_arg("image", |a| a.index(1))
        .mut_arg("dest", |a| a.index(2)),
        "man" => command.mut_arg("command", |a| a.add(man_page_completer())),
        _ => command,
    }
}

/// Parses `argv` as a command and runs it. A linked command is parsed as by its own name
/// (a multi-call parse: `build-image …`, and `dockerutils build-image …` alike, so its
/// usage lines and `--version` say `build-image`); the others as subcommands of
/// `dockerutils` (`dockerutils init …`, as their usage lines say). A wrong command line is
/// clap's error, exit code 2.
fn run_command(mut argv: Vec<OsString>) -> i32 {
    if invoked_name(&argv) == "dockerutils" && is_linked(&argv[1].to_string_lossy()) {
        argv.remove(0);
    }
    let as_link = invoked_name(&argv) != "dockerutils";
    let root = clap::Command::new("dockerutils")
        .multicall(as_link)
        .subcommand_required(true);
    let root = Cmd::augment_subcommands(root);
    let matches = root.get_matches_from(argv);
    match Cmd::from_arg_matches(&matches) {
        Ok(cmd) => cmd.run(),
        Err(e) => e.exit(),
    }
}

use std::ffi::OsString;
use std::path::Path;

/// The name a command line's program was invoked as (`build-image` for
/// `/usr/local/bin/build-image`): what a multi-call binary dispatches on.
fn invoked_name(argv: &[OsString]) -> String {
    argv.first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Multi-call entry: `build-image …` (a link named after the command) or
/// `dockerutils build-image …`.
pub fn main(argv: Vec<OsString>) -> i32 {
    crate::project::publish::set_lookup(crate::project::publish::newest_published);
    let invoked = invoked_name(&argv);
    // TAB in a shell that sourced `dockerutils completions <shell>`.
    if let Some(code) = completions::try_complete(&argv) {
        return code;
    }
    // `init`, `completions`, `man`, `ssh-config`, `idle-stop`: only as `dockerutils <command>`.
    if is_linked(&invoked) {
        return run_command(argv);
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
        Some(name) if Cmd::has_subcommand(name) => run_command(argv),
        Some(name) => {
            let what = if name.starts_with('-') {
                "option"
            } else {
                "command"
            };
            let names: Vec<String> = entries().into_iter().map(|e| e.name).collect();
            // A typo or two away from a command: say which (as clap does for flags).
            let tip = names
                .iter()
                .map(|n| (strsim::osa_distance(name, n), n))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, n)| format!("\n\n  tip: a similar command exists: `{n}`"))
                .unwrap_or_default();
            eprintln!(
                "dockerutils: error: unknown {what} `{name}`{tip}\n\n{}",
                usage()
            );
            crate::error::USAGE
        }
    }
}

fn usage() -> String {
    let mut out = format!(
        "dockerutils {}: project-convention tool for Docker\n\nUsage: dockerutils <COMMAND> [ARGS]...  (or each command by its own name)\n\nCommands:\n",
        env!("CARGO_PKG_VERSION")
    );
    for e in entries() {
        out.push_str(&format!("  {:<16}{}\n", e.name, e.about()));
    }
    out.push_str("\n`<COMMAND> --help` tells more about each.\n");
    out
}
