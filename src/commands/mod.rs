//! One file per user command, each with its `Args` (clap) and a `main`. Most build a
//! [`crate::plan::Plan`] from the project, the cfg and the flags, then print or run it
//! (those with a `plan` function expose it to the tests); the AWS commands plan an API
//! call instead, and the exceptions are listed in ARCHITECTURE.md.

pub(crate) mod auto_build;
pub(crate) mod build_image;
pub(crate) mod create_dock;
pub(crate) mod deploy_image;
pub(crate) mod destroy_dock;
pub(crate) mod dock_env;
pub(crate) mod genversion;
pub(crate) mod idle_stop;
pub(crate) mod init;
pub(crate) mod ls_dock;
pub(crate) mod nb_dock;
pub(crate) mod publish_image;
pub(crate) mod register_dock;
pub(crate) mod run_image;
pub(crate) mod run_notebook;
pub(crate) mod serve_hooks;
pub(crate) mod ssh_config;
pub(crate) mod ssh_dock;
pub(crate) mod start_dock;
pub(crate) mod stop_dock;
pub(crate) mod sync;
pub(crate) mod transfer_image;
pub(crate) mod unregister_dock;

use crate::error::{self, Result};

/// A command's exit code: its own, or its error's (reported the usual way).
pub(crate) fn exit_code(prog: &str, result: Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(e) => fail(prog, &e),
    }
}

pub(crate) use crate::error::fail;
pub(crate) use crate::exec::finish;

/// Asks before something that costs or destroys: yes with `-y`; at a terminal, the
/// user's answer; without a terminal and without `-y`, an error saying so.
pub(crate) fn confirm(question: &str, yes: bool) -> Result<bool> {
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

/// The user answered no to [`confirm`]: nothing was done, which is not what the command
/// is for, so it exits 1 (`stop-dock x && echo stopped` must not say stopped).
pub(crate) fn canceled() -> Result<i32> {
    println!("Canceled");
    Ok(1)
}
