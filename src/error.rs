//! Errors that end a command: what was wrong, what to do, and the exit code.

use std::path::PathBuf;

/// Exit code of usage errors (bad flags, unknown image), as clap and argparse use.
pub(crate) const USAGE: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no `docker/` directory in {start} or any directory above it")]
    NoProject {
        start: PathBuf,
        /// Where the search stopped at a filesystem boundary, if it did.
        boundary: Option<PathBuf>,
    },

    #[error(
        "{} is owned by another user (uid {owner}): not used as your project",
        root.join("docker").display()
    )]
    UnsafeProject { root: PathBuf, owner: u32 },

    #[error("unknown image `{image}`")]
    UnknownImage { image: String, valid: Vec<String> },

    #[error("no dock `{name}` is registered")]
    UnknownDock { name: String, known: Vec<String> },

    #[error("{path}:{line}: {message}")]
    Cfg {
        path: PathBuf,
        line: usize,
        message: String,
    },

    #[error("{path}: [{section}] {key}: {message}")]
    CfgValue {
        path: PathBuf,
        section: String,
        key: String,
        message: String,
    },

    #[error("no Dockerfile for image `{image}`: {path} does not exist")]
    NoDockerfile { image: String, path: PathBuf },

    #[error("`{program}` was not found on PATH")]
    ProgramMissing { program: String },

    #[error("{0}")]
    Usage(String),

    #[error("image `{image}` is not in the local engine")]
    NoImage { image: String },

    /// A project image that a Dockerfile builds from is not built, and the run does not
    /// build it.
    #[error("docker/{image}/Dockerfile is built from the project's image `{parent}`, and {what}")]
    ParentMissing {
        image: String,
        parent: String,
        what: String,
    },

    /// An AWS call, configuration or resource, with what to do about it.
    #[error("{message}")]
    Aws {
        message: String,
        hint: Option<String>,
    },

    /// The user pressed Ctrl-C (or the command got SIGTERM) while it waited.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// Something on the remote side: a dock, an ssh host, a registry, a notebook server.
    #[error("{0}")]
    Remote(String),

    /// The Docker engine (through its CLI) failed or did not answer a query: the local
    /// engine, or the one DOCKER_HOST names.
    #[error("{0}")]
    Engine(String),

    /// A program the command runs for itself (git, …) failed; its own words are in the
    /// message.
    #[error("{0}")]
    Tool(String),

    /// A deploy that failed (and what was done about it: rolled back, or nothing changed).
    #[error("{message}")]
    Deploy {
        message: String,
        hint: Option<String>,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// `program` could not be started: missing from PATH, or another reason.
    pub fn spawn(program: &str, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::ProgramMissing {
                program: program.into(),
            }
        } else {
            Error::io(format!("cannot run {program}"), source)
        }
    }

    /// What the user can do about it, printed after the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NoProject {
                boundary: Some(b),
                ..
            } => Some(format!(
                "the search stopped at {}, a filesystem boundary; set \
                 DOCKERUTILS_DISCOVERY_ACROSS_FILESYSTEM=1 to look further up",
                b.display()
            )),
            Error::UnsafeProject { root, .. } => Some(format!(
                "its dockerutils.cfg can run scripts as you; if you trust it: \
                 export DOCKERUTILS_SAFE_DIRECTORY={} (several separated by `:`, or `*`)",
                root.display()
            )),
            Error::NoProject { .. } => Some(
                "run the command inside a project whose root holds `docker/<image>/Dockerfile` \
                 (one subdirectory per image) and optionally `docker/dockerutils.cfg`; \
                 `dockerutils init` can scaffold one"
                    .into(),
            ),
            Error::UnknownImage { valid, .. } if valid.is_empty() => {
                Some("this project has no images yet: add docker/<image>/Dockerfile".into())
            }
            Error::UnknownImage { valid, .. } => {
                Some(format!("valid images: {}", valid.join(", ")))
            }
            Error::UnknownDock { known, .. } if known.is_empty() => Some(
                "no dock is registered yet: `register-dock IP [MONIKER]` (docks live in ~/.docker/<ip>/)".into(),
            ),
            Error::UnknownDock { known, .. } => Some(format!(
                "registered docks: {} (`register-dock IP [MONIKER]` adds one)",
                known.join(", ")
            )),
            Error::Cfg { path, .. } if path.ends_with("dock.cfg") => Some(
                "~/.docker/dock.cfg holds `key=\"value\"` lines (shell quoting, `#` comments); \
                 `create-dock --help` lists the keys"
                    .into(),
            ),
            Error::Cfg { .. } => Some(
                "dockerutils.cfg is read like Python's configparser: `[section]` headers, \
                 `key = value` or `key: value` lines, indented continuation lines, `#`/`;` comments"
                    .into(),
            ),
            Error::NoDockerfile { image, .. } => Some(format!(
                "create docker/{image}/Dockerfile, or remove the docker/{image} directory"
            )),
            Error::ProgramMissing { program } if program == "docker" => Some(
                "install the Docker CLI (Debian/Ubuntu: `apt-get install docker.io`; \
                 see https://docs.docker.com/engine/install/) and make sure it is on PATH"
                    .into(),
            ),
            Error::ProgramMissing { program } => Some(format!("install `{program}` or fix PATH")),
            Error::ParentMissing { image, parent, .. } => {
                let (image, parent) = (crate::plan::quote(image), crate::plan::quote(parent));
                let first = format!(
                    "build it first: `build-image {image} --with-deps` builds the images {image} \
                     is built from, then {image}"
                );
                Some(if parent == "base" {
                    format!("{first}; `build-image {image} -f` builds base, then {image}")
                } else {
                    format!("{first} (or `build-image {parent}`, then `build-image {image}`)")
                })
            }
            Error::NoImage { .. } => Some("build it (build-image) or pull it first; `docker images` lists what is there".into()),
            Error::Aws { hint, .. } | Error::Deploy { hint, .. } => hint.clone(),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            // A name that is no image or no registered dock: mistyped, like any usage.
            Error::UnknownImage { .. } | Error::UnknownDock { .. } | Error::Usage(_) => USAGE,
            Error::ProgramMissing { .. } => 127,
            // 128 + the signal that came: 130 for Ctrl-C, 143 for SIGTERM.
            Error::Interrupted(_) => crate::process::interrupted_code(),
            _ => 1,
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// Print an error the way every command does: `error: …` then `hint: …`.
pub(crate) fn report(prog: &str, err: &Error) {
    eprintln!("{prog}: error: {err}");
    if let Some(hint) = err.hint() {
        eprintln!("{prog}: hint: {hint}");
    }
}

/// Reports an error the usual way and returns its exit code.
pub(crate) fn fail(prog: &str, err: &Error) -> i32 {
    report(prog, err);
    err.exit_code()
}

/// Prints a warning the way errors are printed (`prog: warning: …`, then the hint).
pub(crate) fn warn(prog: &str, text: &str) {
    eprintln!("{prog}: warning: {text}");
}

/// A warning of an error that does not stop the command, with its hint.
pub(crate) fn warn_error(prog: &str, e: &Error) {
    warn(prog, &e.to_string());
    if let Some(hint) = e.hint() {
        eprintln!("{prog}: hint: {hint}");
    }
}
