//! `dockerutils dock-env NAME`: the shell code that `source dock NAME` evaluates (bash and
//! zsh): DOCKER_HOST/DOCKER_IP, the prompt, the ssh shim on PATH, and the `castoff`,
//! `sync-up` and `sync-down` functions. `dock-env --castoff` prints the code that undoes it.
//! Scripts can use it directly: `eval "$(dockerutils dock-env NAME)"`.
//!
//! The shim is only needed while ssh does not read the generated ssh config: once
//! `dockerutils ssh-config --install` is in the ~/.ssh/config ssh reads and the dock has
//! its block there, the docker CLI's own ssh to `USER@IP` gets the dock's options from
//! that block, and PATH is left alone.

use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use crate::plan::quote;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "dock-env",
    version,
    about = "Print the shell code that docks this shell to a dock (what `source dock NAME` evaluates)",
    after_help = "Usage from a shell (bash or zsh):\n  source dock gpu-box        # docker commands now run on gpu-box\n  castoff                    # back to the local engine\n\nIn scripts:\n  eval \"$(dockerutils dock-env gpu-box)\"\n\nDOCKERUTILS_DISABLE_PROMPT=1 leaves the prompt alone."
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock
    #[arg(required_unless_present = "castoff")]
    pub name: Option<String>,
    /// Print the code that undoes a dock instead
    #[arg(long, conflicts_with = "name")]
    pub castoff: bool,
}

/// The code for docking to `dock`, with the ssh shim in `shim_dir` first on PATH (none:
/// ssh gets the dock's options from the generated ssh config).
pub(crate) fn dock_code(dock: &Dock, shim_dir: Option<&str>) -> String {
    let marker = format!("[dock:{}] ", prompt_safe(dock.name()));
    let shim = match shim_dir {
        Some(dir) => format!(
            "export _DOCKERUTILS_SHIM={}\n\
             case \":$PATH:\" in *\":$_DOCKERUTILS_SHIM:\"*) ;; *) export PATH=\"$_DOCKERUTILS_SHIM:$PATH\" ;; esac\n",
            quote(dir)
        ),
        None => String::new(),
    };
    format!(
        r#"export DOCKER_HOST={host}
export DOCKER_IP={ip}
export _DOCK_MONIKER={marker}
{shim}if [ -z "$DOCKERUTILS_DISABLE_PROMPT" ]; then
  if [ -n "$_OLD_VIRTUAL_PS1" ]; then export _OLD_VIRTUAL_PS1="$_OLD_VIRTUAL_PS1$_DOCK_MONIKER"; fi
  PS1="$PS1$_DOCK_MONIKER"
fi
castoff() {{ eval "$(dockerutils dock-env --castoff)"; }}
sync-up() {{ dockerutils sync-up "$@"; }}
sync-down() {{ dockerutils sync-down "$@"; }}
"#,
        host = quote(&dock.ssh_url()),
        ip = quote(&dock.ip),
        marker = quote(&marker),
    )
}

/// A name as it may stand in PS1: bash expands `$(…)`, backquotes and `\` escapes in
/// the prompt at every prompt, zsh `%` sequences (and `$(…)` with PROMPT_SUBST). A
/// registry file written by another tool can hold anything, so only plain characters
/// are kept; the rest show as `_`.
fn prompt_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Undoes `dock_code`, leaving a Python venv's prompt as it was.
pub(crate) const CASTOFF_CODE: &str = r#"if [ -n "$_DOCK_MONIKER" ]; then
  PS1="${PS1//"$_DOCK_MONIKER"/}"
  if [ -n "$_OLD_VIRTUAL_PS1" ]; then export _OLD_VIRTUAL_PS1="${_OLD_VIRTUAL_PS1//"$_DOCK_MONIKER"/}"; fi
fi
if [ -n "$_DOCKERUTILS_SHIM" ]; then
  PATH=":$PATH:"; PATH="${PATH//":$_DOCKERUTILS_SHIM:"/:}"; PATH="${PATH#:}"; PATH="${PATH%:}"
fi
unset DOCKER_HOST DOCKER_IP _DOCK_MONIKER _DOCKERUTILS_SHIM
unset -f castoff sync-up sync-down
echo "Castoff complete"
"#;

fn code(args: &Args) -> Result<String> {
    if args.castoff {
        return Ok(CASTOFF_CODE.to_string());
    }
    if let Some(current) = std::env::var("_DOCK_MONIKER")
        .ok()
        .filter(|m| !m.is_empty())
    {
        return Err(Error::Usage(format!(
            "this shell is already docked {}; try `castoff` first",
            current.trim()
        )));
    }
    let dock = dock::find(args.name.as_deref().unwrap_or_default())?;
    eprintln!(
        "Docking to {} [moniker: {}]",
        dock.destination(),
        dock.name()
    );
    if crate::dock::ssh_config::active()
        && crate::dock::ssh_config::hosts_on_disk().contains(&dock.ip)
    {
        return Ok(dock_code(&dock, None));
    }
    let shim =
        crate::dock::ssh::ensure_shim().map_err(|e| Error::io("cannot set up the ssh shim", e))?;
    eprintln!(
        "(through the ssh shim on PATH: {})",
        if crate::dock::ssh_config::installed() && crate::dock::ssh_config::ssh_reads_user_config()
        {
            "this dock has no block in the generated ssh config yet; \
             `dockerutils ssh-config --sync` writes it"
        } else {
            "`dockerutils ssh-config --install` lets ssh and docker share the dock's \
             connection without it"
        }
    );
    Ok(dock_code(&dock, Some(&shim.to_string_lossy())))
}

pub(crate) fn main(args: Args) -> i32 {
    match code(&args) {
        Ok(code) => {
            print!("{code}");
            0
        }
        Err(e) => super::fail("dock", &e),
    }
}
