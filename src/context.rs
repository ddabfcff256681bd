//! What a command reads from its surroundings besides the project: the user, the
//! environment, whether stdin is a terminal, the time. Captured once, so that a plan is a
//! pure function of (project, cfg, flags, context) and tests can build one by hand.

use std::collections::HashMap;
use std::io::IsTerminal;

#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub user: String,
    pub home: String,
    pub env: HashMap<String, String>,
    pub stdin_is_tty: bool,
    /// Runs as root (effective uid 0): a copy then sets owners unless told not to.
    pub superuser: bool,
}

impl Context {
    pub(crate) fn from_process() -> Context {
        Context {
            user: crate::project::user_name(),
            home: dirs::home_dir()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            env: std::env::vars().collect(),
            stdin_is_tty: std::io::stdin().is_terminal(),
            // SAFETY: geteuid(2) cannot fail and touches no memory.
            superuser: unsafe { libc::geteuid() } == 0,
        }
    }

    /// Local time as `yy-mm-dd_HH.MM.SS` (container names, as the original). Only asked
    /// for when needed: it reads the time zone.
    pub(crate) fn timestamp(&self) -> String {
        local_timestamp()
    }

    /// A non-empty environment variable.
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Docked: the shell was pointed at a dock (`source dock NAME` sets `DOCKER_IP`).
    pub(crate) fn docked(&self) -> bool {
        self.var("DOCKER_IP").is_some()
    }

    pub(crate) fn expand_env(&self, text: &str) -> Result<String, String> {
        crate::project::expand::env_vars_with(text, |name| self.env.get(name).cloned())
    }
}

fn local_timestamp() -> String {
    let (y, mo, d, h, mi, s) = crate::time::local_now();
    format!(
        "{:02}-{mo:02}-{d:02}_{h:02}.{mi:02}.{s:02}",
        y.rem_euclid(100)
    )
}
