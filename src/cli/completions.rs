//! `dockerutils completions bash|zsh|fish`: the shell code that registers completions for
//! every command name, and the call back that answers them.
//!
//! The completions are dynamic (clap_complete's engine): at each TAB the shell runs
//! `_DOCKERUTILS_COMPLETE=<shell> dockerutils -- <the words typed>`, and the binary answers
//! with the candidates: image names from the project's `docker/` tree where an image is
//! expected, registered docks where a dock is, flags and file names elsewhere. So they
//! follow the project and the registry as they change, and never go stale.

use super::definitions as cli;
use clap::{Parser, ValueEnum};
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};
use std::ffi::OsString;
use std::io::Write;

/// The environment variable that turns a run of the binary into a completion request.
pub(super) const VAR: &str = "_DOCKERUTILS_COMPLETE";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(super) enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    fn completer(self) -> &'static dyn EnvCompleter {
        match self {
            Shell::Bash => &Bash,
            Shell::Zsh => &Zsh,
            Shell::Fish => &Fish,
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "completions",
    bin_name = "dockerutils completions",
    display_name = "dockerutils-completions",
    version,
    about = "Print the shell code that enables TAB completion of every dockerutils command",
    long_about = "Print the shell code that enables TAB completion of every dockerutils command \
        (build-image, run-image, …, and dockerutils itself). Completions are computed by the binary \
        when you press TAB: image names from the project's docker/ tree (plus all/clean for \
        build-image, synthetic images for run-image), registered docks for the dock commands, \
        flags everywhere. Load the code at shell start-up, so that it always matches the \
        installed binary.",
    after_help = "Enable (add the line to your shell's start-up file):\n  bash (~/.bashrc):                   source <(dockerutils completions bash)\n  zsh  (~/.zshrc, after compinit):    source <(dockerutils completions zsh)\n  fish (~/.config/fish/config.fish):  dockerutils completions fish | source"
)]
pub(super) struct Args {
    /// The shell
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The registration code for every command name, calling back into `binary`.
pub(super) fn script(shell: Shell, binary: &str) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let names = cli::linked_names().chain(["dockerutils".to_string()]);
    for name in names {
        shell
            .completer()
            .write_registration(VAR, &name, &name, binary, &mut buf)?;
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

pub(super) fn main(args: Args) -> i32 {
    // The binary itself (links resolved), so completion works whatever PATH holds.
    let binary = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "dockerutils".into());
    match script(args.shell, &binary) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => crate::commands::fail(
            "completions",
            &crate::error::Error::io("cannot write the script", e),
        ),
    }
}

/// Answers a completion request, when this run is one: `_DOCKERUTILS_COMPLETE=<shell>`
/// and the words typed after `--` (the first is the command name as typed). Returns the
/// exit code, or None for an ordinary run.
pub(super) fn try_complete(argv: &[OsString]) -> Option<i32> {
    let shell = std::env::var(VAR).ok()?;
    if shell.is_empty() || shell == "0" {
        return None;
    }
    let dashes = argv.iter().position(|a| a == "--")?;
    let words = argv[dashes + 1..].to_vec();
    let Some(shell) = Shell::from_str(&shell, true).ok() else {
        eprintln!("dockerutils: {VAR}={shell}: completions are for bash, zsh and fish");
        return Some(1);
    };
    let name = super::invoked_name(&words);
    let mut cmd = match super::entry(&name) {
        Some(e) if !e.subcommand_only => e.command(),
        _ => cli::dockerutils(),
    };
    cmd.build();
    let cwd = std::env::current_dir().ok();
    let mut buf = Vec::new();
    match shell
        .completer()
        .write_complete(&mut cmd, words, cwd.as_deref(), &mut buf)
    {
        Ok(()) => {
            let _ = std::io::stdout().write_all(&buf);
            Some(0)
        }
        Err(e) => {
            eprintln!("dockerutils: completion failed: {e}");
            Some(1)
        }
    }
}
