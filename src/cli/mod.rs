//! The command line: the one table of commands (name, entry point, clap definition) from
//! which dispatch,
//! `--list-commands`, usage, the clap definitions of completions and man pages are made,
//! and the multi-call entry that picks a command by the name the binary was invoked as.

mod completions;
mod daily;
mod definitions;
mod man;

pub use daily::daily_main;

use crate::commands::{
    self, auto_build, build_image, create_dock, deploy_image, destroy_dock, dock_env, genversion,
    idle_stop, init, ls_dock, nb_dock, publish_image, register_dock, run_image, run_notebook,
    serve_hooks, ssh_config, ssh_dock, start_dock, stop_dock, sync, transfer_image,
    unregister_dock,
};
use clap::CommandFactory;
use definitions::{Images, man_page_completer, with_docks, with_images};

/// A command's entry point: its argv (its name first), its exit code.
pub(crate) type Main = fn(Vec<std::ffi::OsString>) -> i32;

/// One command: everything the tool knows of it.
pub(crate) struct Entry {
    pub name: &'static str,
    pub main: Main,
    /// Its clap definition (which `--help`, completions and man pages read), with the
    /// completers of its image and dock arguments.
    define: fn() -> clap::Command,
    /// Only `dockerutils <name>`, never linked under its own name (a command called
    /// `init`, `man`, `ssh-config` or `idle-stop` on PATH would be a trap).
    pub subcommand_only: bool,
}

impl Entry {
    /// The clap command, named as installed.
    pub(crate) fn command(&self) -> clap::Command {
        (self.define)().name(self.name)
    }

    /// Its one-line description: the clap definition's `about`.
    pub(crate) fn about(&self) -> String {
        self.command()
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

/// The entry of the command `name`.
pub(crate) fn entry(name: &str) -> Option<&'static Entry> {
    COMMANDS.iter().find(|e| e.name == name)
}

const fn linked(name: &'static str, main: Main, define: fn() -> clap::Command) -> Entry {
    Entry {
        name,
        main,
        define,
        subcommand_only: false,
    }
}

const fn only_as_subcommand(
    name: &'static str,
    main: Main,
    define: fn() -> clap::Command,
) -> Entry {
    Entry {
        name,
        main,
        define,
        subcommand_only: true,
    }
}

/// Every command, in the order usage and the man page list them: the one list from
/// which dispatch, `--list-commands`, usage, completions and man pages are made.
pub(crate) const COMMANDS: &[Entry] = &[
    linked("build-image", commands::build_image::main, || {
        with_images(build_image::Args::command(), "image", Images::Build)
    }),
    linked("run-image", commands::run_image::main, || {
        with_images(run_image::Args::command(), "image", Images::Run)
    }),
    linked(
        "run-notebook",
        commands::run_notebook::main,
        run_notebook::Args::command,
    ),
    linked(
        "genversion",
        commands::genversion::main,
        genversion::Args::command,
    ),
    linked(
        "register-dock",
        commands::register_dock::main,
        register_dock::Args::command,
    ),
    linked("unregister-dock", commands::unregister_dock::main, || {
        with_docks(unregister_dock::Args::command(), "name")
    }),
    linked("dock-env", commands::dock_env::main, || {
        with_docks(dock_env::Args::command(), "name")
    }),
    // clap numbers the `last` COMMAND argument before NAME, and the completion engine
    // takes positionals by number: NAME is made the first explicitly.
    linked("ssh-dock", commands::ssh_dock::main, || {
        with_docks(ssh_dock::Args::command(), "name")
            .mut_arg("name", |a| a.index(1))
            .mut_arg("command", |a| a.index(2))
    }),
    linked("nb-dock", commands::nb_dock::main, || {
        with_docks(nb_dock::Args::command(), "name")
    }),
    linked("sync-up", commands::sync::main_up, || {
        with_docks(sync::Args::command(), "dock")
    }),
    linked("sync-down", commands::sync::main_down, || {
        with_docks(sync::Args::command(), "dock")
    }),
    linked("transfer-image", commands::transfer_image::main, || {
        with_docks(with_docks(transfer_image::Args::command(), "dest"), "from")
    }),
    linked("auto-build", commands::auto_build::main, || {
        with_images(auto_build::Args::command(), "images", Images::Dirs)
    }),
    linked("publish-image", commands::publish_image::main, || {
        with_images(publish_image::Args::command(), "image", Images::Dirs)
    }),
    linked("deploy-image", commands::deploy_image::main, || {
        with_images(deploy_image::Args::command(), "image", Images::Run)
    }),
    linked(
        "serve-hooks",
        commands::serve_hooks::main,
        serve_hooks::Args::command,
    ),
    linked(
        "create-dock",
        commands::create_dock::main,
        create_dock::Args::command,
    ),
    linked("start-dock", commands::start_dock::main, || {
        with_docks(start_dock::Args::command(), "name")
    }),
    linked("stop-dock", commands::stop_dock::main, || {
        with_docks(stop_dock::Args::command(), "name")
    }),
    linked("destroy-dock", commands::destroy_dock::main, || {
        with_docks(destroy_dock::Args::command(), "name")
    }),
    linked("ls-dock", commands::ls_dock::main, ls_dock::Args::command),
    only_as_subcommand(
        "ssh-config",
        commands::ssh_config::main,
        ssh_config::Args::command,
    ),
    only_as_subcommand("idle-stop", commands::idle_stop::main, || {
        with_docks(idle_stop::Args::command(), "name")
    }),
    only_as_subcommand("init", commands::init::main, init::Args::command),
    only_as_subcommand("completions", completions::main, completions::Args::command),
    only_as_subcommand("man", man::main, || {
        man::Args::command().mut_arg("command", |a| a.add(man_page_completer()))
    }),
];

use std::ffi::OsString;
use std::path::Path;

/// Multi-call entry: `build-image …` (a link named after the command) or
/// `dockerutils build-image …`.
pub fn main(argv: Vec<OsString>) -> i32 {
    crate::project::publish::set_lookup(crate::project::publish::newest_published);
    let invoked = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // TAB in a shell that sourced `dockerutils completions <shell>`.
    if let Some(code) = completions::try_complete(&argv) {
        return code;
    }
    // `init`, `completions`, `man`, `ssh-config`, `idle-stop`: only as `dockerutils <command>`.
    if let Some(e) = entry(&invoked).filter(|e| !e.subcommand_only) {
        return (e.main)(argv);
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
        Some(name) => match entry(name) {
            Some(e) => (e.main)(argv[1..].to_vec()),
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
    for e in COMMANDS {
        out.push_str(&format!("  {:<16}{}\n", e.name, e.about()));
    }
    out.push_str("\n`<COMMAND> --help` tells more about each.\n");
    out
}
