//! The clap definition of every command, for shell completions and man pages, with the
//! completers that find argument values when the shell asks: image names from the
//! project's `docker/` tree (and its cfg's synthetic images), dock names from the registry.
//!
//! The commands' own files stay as they are: the completers are attached here, to the
//! argument of each command that takes an image or a dock.

use super::{
    COMMANDS, auto_build, build_image, completions, create_dock, destroy_dock, dock_env,
    genversion, idle_stop, init, ls_dock, man, nb_dock, publish_image, register_dock, run_image,
    run_notebook, ssh_config, ssh_dock, start_dock, stop_dock, sync, transfer_image,
    unregister_dock,
};
use crate::cfg::keys;
use crate::project::Project;
use clap::{Arg, Command, CommandFactory};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use std::ffi::OsStr;

/// Commands that are only `dockerutils <name>`: not linked under their own name (a
/// command called `init`, `man`, `ssh-config` or `idle-stop` on PATH would be a trap).
pub const SUBCOMMANDS_ONLY: &[&str] = &["init", "completions", "man", "ssh-config", "idle-stop"];

/// The names install.sh links to the binary.
pub fn linked_names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|n| !SUBCOMMANDS_ONLY.contains(n))
}

/// Which images an argument takes.
#[derive(Clone, Copy)]
enum Images {
    /// build-image: the docker/ subdirectories, `all`, `clean`
    Build,
    /// run-image: the subdirectories and the cfg's synthetic images
    Run,
    /// the subdirectories only
    Dirs,
}

/// The clap command of `name` with its completers, or None for a command this table
/// does not know (it still gets a man page and file-name completion from
/// [`command_or_plain`]).
pub fn command(name: &str) -> Option<Command> {
    let (name, _, _) = COMMANDS.iter().find(|(n, _, _)| *n == name)?;
    let cmd = match *name {
        "build-image" => with_images(build_image::Args::command(), "image", Images::Build),
        "run-image" => with_images(run_image::Args::command(), "image", Images::Run),
        "run-notebook" => run_notebook::Args::command(),
        "genversion" => genversion::Args::command(),
        "nb-dock" => with_docks(nb_dock::Args::command(), "name"),
        "publish-image" => with_images(publish_image::Args::command(), "image", Images::Dirs),
        "auto-build" => with_images(auto_build::Args::command(), "images", Images::Dirs),
        "transfer-image" => with_docks(transfer_image::Args::command(), "dest"),
        "deploy-image" => with_images(super::deploy_image::Args::command(), "image", Images::Run),
        "serve-hooks" => super::serve_hooks::Args::command(),
        "register-dock" => register_dock::Args::command(),
        "unregister-dock" => with_docks(unregister_dock::Args::command(), "name"),
        "dock-env" => with_docks(dock_env::Args::command(), "name"),
        // clap numbers the `last` COMMAND argument before NAME, and the completion engine
        // takes positionals by number: NAME is made the first explicitly.
        "ssh-dock" => with_docks(ssh_dock::Args::command(), "name")
            .mut_arg("name", |a| a.index(1))
            .mut_arg("command", |a| a.index(2)),
        "sync-up" | "sync-down" => with_docks(sync::Args::command(), "dock"),
        "create-dock" => create_dock::Args::command(),
        "start-dock" => with_docks(start_dock::Args::command(), "name"),
        "stop-dock" => with_docks(stop_dock::Args::command(), "name"),
        "destroy-dock" => with_docks(destroy_dock::Args::command(), "name"),
        "ls-dock" => ls_dock::Args::command(),
        "ssh-config" => ssh_config::Args::command(),
        "idle-stop" => with_docks(idle_stop::Args::command(), "name"),
        "init" => init::Args::command(),
        "completions" => completions::Args::command(),
        "man" => man::Args::command().mut_arg("command", |a| {
            a.add(ArgValueCompleter::new(|current: &OsStr| {
                let names = COMMANDS.iter().map(|(n, about, _)| (n.to_string(), *about));
                candidates(current, names.chain([("dockerutils".into(), "the tool")]))
            }))
        }),
        _ => return None,
    };
    Some(cmd.name(*name))
}

/// [`command`], else a command that takes any arguments (completed as file names).
pub fn command_or_plain(name: &'static str, about: &'static str) -> Command {
    command(name).unwrap_or_else(|| {
        Command::new(name).about(about).arg(
            Arg::new("args")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true),
        )
    })
}

/// `dockerutils` itself: every command as a subcommand.
pub fn dockerutils() -> Command {
    Command::new("dockerutils")
        .version(env!("CARGO_PKG_VERSION"))
        .about(
            "Project-convention tool for Docker: build, run, publish and ship a project's images",
        )
        .long_about(
            "Project-convention tool for Docker: build, run, publish and ship a project's images. \
             Each command is also installed under its own name (build-image, run-image, …), \
             except init, completions, man, ssh-config and idle-stop, which are `dockerutils \
             <command>` only.",
        )
        .subcommand_required(true)
        .subcommand_value_name("COMMAND")
        .subcommands(
            COMMANDS
                .iter()
                .map(|(name, about, _)| command_or_plain(name, about)),
        )
}

fn with_images(cmd: Command, arg: &str, which: Images) -> Command {
    cmd.mut_arg(arg, |a| {
        a.add(ArgValueCompleter::new(move |current: &OsStr| {
            candidates(current, image_names(which))
        }))
    })
}

fn with_docks(cmd: Command, arg: &str) -> Command {
    cmd.mut_arg(arg, |a| {
        a.add(ArgValueCompleter::new(|current: &OsStr| {
            candidates(current, dock_names())
        }))
    })
}

/// The candidates among `names` (with their help) that start with what is typed.
fn candidates(
    current: &OsStr,
    names: impl IntoIterator<Item = (String, impl Into<String>)>,
) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return vec![];
    };
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|(n, _)| n.starts_with(current) && seen.insert(n.clone()))
        .map(|(n, help)| CompletionCandidate::new(n).help(Some(help.into().into())))
        .collect()
}

/// The images of the project around the current directory, with what each is.
fn image_names(which: Images) -> Vec<(String, String)> {
    let Ok(cwd) = std::env::current_dir() else {
        return vec![];
    };
    let Ok(project) = Project::discover(&cwd, &crate::project::user_name()) else {
        return vec![];
    };
    let mut out: Vec<(String, String)> = project
        .image_dirs()
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let help = format!("docker/{d}");
            (d, help)
        })
        .collect();
    match which {
        Images::Build => {
            out.push(("all".into(), "every image, base first".into()));
            out.push(("clean".into(), "remove the project's images".into()));
        }
        Images::Run => {
            for s in project.synthetic_images().unwrap_or_default() {
                let runs = project
                    .cfg
                    .get(&s, keys::NAME)
                    .ok()
                    .flatten()
                    .map(|n| format!("synthetic image (runs {n})"))
                    .unwrap_or_else(|| "synthetic image".into());
                out.push((s, runs));
            }
        }
        Images::Dirs => {}
    }
    out
}

/// Registered docks: monikers, then IPs, with whom each reaches.
pub fn dock_names() -> Vec<(String, String)> {
    let docks = crate::dock::all();
    let mut out = vec![];
    for d in &docks {
        if !d.moniker.is_empty() && d.moniker != "none" {
            out.push((d.moniker.clone(), d.destination()));
        }
    }
    for d in &docks {
        out.push((d.ip.clone(), format!("{} ({})", d.destination(), d.name())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_its_clap_definition_and_completers_attach() {
        for (name, _, _) in COMMANDS {
            let mut cmd = command(name).unwrap_or_else(|| {
                panic!("{name}: add it to commands::cli::command (completions, man page)")
            });
            cmd.build();
            assert_eq!(cmd.get_name(), *name);
        }
        dockerutils().debug_assert();
    }

    #[test]
    fn only_the_tools_own_subcommands_are_not_linked() {
        let linked: Vec<&str> = linked_names().collect();
        assert!(linked.contains(&"build-image") && linked.contains(&"ssh-dock"));
        for name in SUBCOMMANDS_ONLY {
            assert!(!linked.contains(name));
            assert!(COMMANDS.iter().any(|(n, _, _)| n == name), "{name}");
        }
    }

    #[test]
    fn candidates_match_the_typed_prefix_once() {
        let got = candidates(
            OsStr::new("d"),
            [("dev", "a"), ("data", "b"), ("prod", "c"), ("dev", "d")]
                .map(|(n, h)| (n.to_string(), h)),
        );
        let names: Vec<String> = got
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["dev", "data"]);
    }
}
