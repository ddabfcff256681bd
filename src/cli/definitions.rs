//! The clap side of the command list (`super::Cmd`): `dockerutils` with every
//! command as a subcommand, and the completers that find argument values when the shell
//! asks: image names from the project's `docker/` tree (and its cfg's synthetic images),
//! dock names from the registry. The commands' own files stay as they are:
//! `super::with_completers` attaches these to the argument of each command that takes an
//! image or a dock.

use super::entries;
use crate::project::Project;
use crate::project::cfg::keys;
use clap::Command;
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use std::ffi::OsStr;

/// The names install.sh links to the binary.
pub(super) fn linked_names() -> impl Iterator<Item = String> {
    entries()
        .into_iter()
        .filter(|e| !e.subcommand_only)
        .map(|e| e.name)
}

/// Which images an argument takes.
#[derive(Clone, Copy)]
pub(super) enum Images {
    /// build-image: the docker/ subdirectories, `all`, `clean`
    Build,
    /// run-image: the subdirectories and the cfg's synthetic images
    Run,
    /// the subdirectories only
    Dirs,
}

/// The completer of `dockerutils man COMMAND`: every page's name.
pub(super) fn man_page_completer() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let names = entries().into_iter().map(|e| (e.name.clone(), e.about()));
        candidates(
            current,
            names.chain([("dockerutils".to_string(), "the tool".to_string())]),
        )
    })
}

/// `dockerutils` itself: every command as a subcommand.
pub(super) fn dockerutils() -> Command {
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
        .subcommands(entries().iter().map(|e| e.command()))
}

pub(super) fn with_images(cmd: Command, arg: &str, which: Images) -> Command {
    cmd.mut_arg(arg, |a| {
        a.add(ArgValueCompleter::new(move |current: &OsStr| {
            candidates(current, image_names(which))
        }))
    })
}

pub(super) fn with_docks(cmd: Command, arg: &str) -> Command {
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
pub(super) fn dock_names() -> Vec<(String, String)> {
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
        for e in entries() {
            let mut cmd = e.command();
            cmd.build();
            assert_eq!(cmd.get_name(), e.name);
            assert!(!e.about().is_empty(), "{}: no about", e.name);
        }
        dockerutils().debug_assert();
    }

    #[test]
    fn only_the_tools_own_subcommands_are_not_linked() {
        let linked: Vec<String> = linked_names().collect();
        assert!(
            linked.iter().any(|n| n == "build-image") && linked.iter().any(|n| n == "ssh-dock")
        );
        for name in ["init", "completions", "man", "ssh-config", "idle-stop"] {
            assert!(!linked.iter().any(|n| n == name));
            assert!(super::super::entry(name).is_some(), "{name}");
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
