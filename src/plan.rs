//! A command's plan: the plain value every command computes before anything runs.
//! Printing, `--dry-run` and the tests read it; `exec` runs it.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One word of a command line. A secret word is passed as is and shown masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    pub value: String,
    pub secret: bool,
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg {
            value: s.into(),
            secret: false,
        }
    }
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Arg {
            value,
            secret: false,
        }
    }
}

/// An environment variable set for the child only (the rest is inherited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvVar {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// What a failure of this step means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnFailure {
    /// Stop the plan and exit with the step's exit code.
    Stop,
    /// `docker rmi` of an image that may not exist: "No such image" is fine, anything
    /// else is reported and remembered for the exit code, and the plan goes on.
    MissingImageIsFine,
    /// A check or a preparation whose exit code `code` has a known meaning (a path
    /// missing on the dock, a directory that cannot be made there): it is reported as the
    /// command's error with what to do, and the plan stops with exit code 1. Any other
    /// failure stops it with the program's own message and code (ssh's 255: the dock
    /// could not be reached).
    Explain(Box<Explanation>),
}

/// What an [`OnFailure::Explain`] step's known failure means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Explanation {
    pub code: i32,
    pub error: String,
    pub hint: String,
}

/// One program to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub program: String,
    pub args: Vec<Arg>,
    pub env: Vec<EnvVar>,
    pub cwd: PathBuf,
    /// A line printed before it runs (e.g. "Running pre-build-script").
    pub note: Option<String>,
    pub on_failure: OnFailure,
    /// Is this a docker CLI call (its failures get the daemon diagnosis)?
    pub is_docker: bool,
    /// Text written to the program's stdin (a password for `--password-stdin`), else the
    /// stdin of the command is inherited.
    pub stdin: Option<Arg>,
    /// How the printed line shows `stdin` when its text is too long to print (a script):
    /// `< LABEL`.
    pub stdin_label: Option<Box<str>>,
    /// Its output (stdout and stderr merged) goes to size-rotated log files instead of
    /// ours, framed by banners (`run-image --log`).
    pub log: Option<LogTo>,
    /// The index in `args` of a container name that another run may have taken (run-image
    /// names containers by the second they start in): when docker refuses the name as in
    /// use, exec runs the command again with `_2`, `_3`, … appended to it.
    pub unique_name: Option<usize>,
    /// The project image a `docker run` runs: when docker fails and its engine does not
    /// have the image, exec says how to get it there. (Boxed: a `Step` stays small.)
    pub image: Option<Box<RunsImage>>,
    /// A command on a dock: exec runs `words` there through the SSH layer (openssh, each
    /// word escaped on its own); `program` and `args` are the `ssh` command line that does
    /// the same, which is what is printed and what `--dry-run` shows.
    pub on_dock: Option<Box<OnDock>>,
}

/// A command a plan runs on a dock: its connection, and the words run there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OnDock {
    pub options: Vec<String>,
    pub dest: String,
    pub name: String,
    pub words: Vec<String>,
    /// A tunnel instead of a command (`words` empty): `[BIND:]LOCAL` here forwarded to
    /// 127.0.0.1:REMOTE on the dock.
    pub forward: Option<(Option<String>, u16, u16)>,
}

/// The image of a `docker run` (`name:tag`) and the `docker/` subdirectory it is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunsImage {
    pub reference: String,
    pub subdir: String,
}

/// The most names tried for one container (the name, then `_2` … `_100`).
pub(crate) const NAME_TRIES: usize = 100;

/// Where a run's output goes with `run-image --log`: a directory of size-rotated files
/// (`crate::service::logrotate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogTo {
    pub dir: PathBuf,
    /// Largest size of a file, in bytes.
    pub max_size: u64,
    /// Files kept, `current` included.
    pub keep: u64,
    /// The image (`name:tag`), named with its id in the start banner.
    pub image: String,
}

impl LogTo {
    /// How `--dry-run` shows it, after the command: shell that appends to the same file,
    /// and a comment on the rotation.
    pub(crate) fn display(&self) -> String {
        format!(
            ">> {} 2>&1  # rotated in {}: files of {} bytes, {} kept",
            quote(
                &self
                    .dir
                    .join(crate::service::logrotate::CURRENT)
                    .to_string_lossy()
            ),
            quote(&self.dir.to_string_lossy()),
            self.max_size,
            self.keep
        )
    }
}

impl Invocation {
    pub(crate) fn new(program: &str, cwd: PathBuf) -> Self {
        Invocation {
            program: program.into(),
            args: vec![],
            env: vec![],
            cwd,
            note: None,
            on_failure: OnFailure::Stop,
            is_docker: program == "docker",
            stdin: None,
            stdin_label: None,
            log: None,
            unique_name: None,
            image: None,
            on_dock: None,
        }
    }

    /// The command with its container name made unique for try `n` (1: as planned;
    /// then `NAME_2`, `NAME_3`, …).
    pub(crate) fn with_name_try(&self, n: usize) -> Invocation {
        let mut inv = self.clone();
        if let Some(arg) = self.unique_name.and_then(|i| inv.args.get_mut(i))
            && n > 1
        {
            arg.value = format!("{}_{n}", arg.value);
        }
        inv
    }

    /// The container name that may get a suffix, as planned.
    pub(crate) fn name(&self) -> Option<&str> {
        self.unique_name
            .and_then(|i| self.args.get(i))
            .map(|a| a.value.as_str())
    }

    pub(crate) fn arg(mut self, a: impl Into<Arg>) -> Self {
        self.args.push(a.into());
        self
    }

    pub(crate) fn args<A: Into<Arg>>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub(crate) fn argv(&self) -> Vec<&str> {
        self.args.iter().map(|a| a.value.as_str()).collect()
    }

    /// The command line as a shell would take it, secrets masked: what is printed.
    pub(crate) fn display(&self) -> String {
        let mut line = String::new();
        for var in &self.env {
            let value = if var.secret {
                MASK.into()
            } else {
                quote(&var.value)
            };
            let _ = write!(line, "{}={value} ", var.name);
        }
        line.push_str(&quote(&self.program));
        for arg in &self.args {
            line.push(' ');
            if arg.secret {
                line.push_str(&mask_word(&arg.value));
            } else {
                line.push_str(&quote(&arg.value));
            }
        }
        if let Some(label) = self.stdin.as_ref().and(self.stdin_label.as_ref()) {
            line.push_str(" < ");
            line.push_str(label);
        } else if let Some(input) = &self.stdin {
            line.push_str(" <<< ");
            line.push_str(&if input.secret {
                MASK.into()
            } else {
                quote(&input.value)
            });
        }
        line
    }
}

pub(crate) const MASK: &str = "****";

/// `NAME=secret` shows as `NAME=****`; a bare secret as `****`.
fn mask_word(word: &str) -> String {
    match word.split_once('=') {
        Some((name, _)) => format!("{}={MASK}", quote(name)),
        None => MASK.into(),
    }
}

/// Shell-quotes a word so that the printed line can be pasted into a shell.
pub(crate) fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.into();
    }
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("'{}'", word.replace('\0', "").replace('\'', r"'\''")))
}

// A plan holds a handful of steps, nearly all `Run`: boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Run(Invocation),
    /// Copy a file (pip.conf.template to pip.conf for a build).
    Copy {
        from: PathBuf,
        to: PathBuf,
    },
    /// Remove a file the plan made.
    Remove {
        path: PathBuf,
    },
    /// Tell the user something (no action).
    Say(String),
    /// Stop unless the local engine has this image (one a build is built from): the
    /// error and hint say what to do.
    RequireImage {
        image: String,
        error: String,
        hint: Option<String>,
    },
}

impl Step {
    /// How `--dry-run` shows the step: shell that would do the same.
    pub(crate) fn display(&self) -> String {
        match self {
            Step::Run(inv) => {
                let mut shown = String::new();
                if let Some(name) = inv.name() {
                    let _ = writeln!(
                        shown,
                        "# the container name {} gets _2, _3, … if another container has it",
                        quote(name)
                    );
                }
                shown.push_str(&inv.display());
                if let Some(log) = &inv.log {
                    shown.push(' ');
                    shown.push_str(&log.display());
                }
                shown
            }
            Step::Copy { from, to } => format!(
                "cp -p {} {}",
                quote(&from.to_string_lossy()),
                quote(&to.to_string_lossy())
            ),
            Step::Remove { path } => format!("rm -f {}", quote(&path.to_string_lossy())),
            Step::Say(text) => format!("# {text}"),
            Step::RequireImage { image, .. } => {
                format!(
                    "docker image inspect --format '{{{{.Id}}}}' {} >/dev/null",
                    quote(image)
                )
            }
        }
    }
}

/// Steps run in order until one fails; `cleanup` runs afterwards whatever happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub cleanup: Vec<Step>,
}

impl Plan {
    pub(crate) fn run(&mut self, inv: Invocation) {
        self.steps.push(Step::Run(inv));
    }

    /// Every invocation of the plan, in order (for tests and callers that inspect it).
    pub(crate) fn invocations(&self) -> impl Iterator<Item = &Invocation> {
        self.steps
            .iter()
            .chain(&self.cleanup)
            .filter_map(|s| match s {
                Step::Run(inv) => Some(inv),
                _ => None,
            })
    }

    /// The `--dry-run` listing: a script that would do what the plan does.
    pub(crate) fn script(&self) -> String {
        let mut out = String::new();
        let mut cwd: Option<&PathBuf> = None;
        for step in self.steps.iter().chain(&self.cleanup) {
            if let Step::Run(inv) = step
                && cwd != Some(&inv.cwd)
            {
                let _ = writeln!(out, "cd {}", quote(&inv.cwd.to_string_lossy()));
                cwd = Some(&inv.cwd);
            }
            let _ = writeln!(out, "{}", step.display());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_and_masks() {
        let mut inv = Invocation::new("docker", "/p".into())
            .args(["run", "-v", "/a b;$(x):/c"])
            .arg(Arg {
                value: "DB_PASSWORD=hunter2".into(),
                secret: true,
            });
        inv.env.push(EnvVar {
            name: "TOKEN".into(),
            value: "abc".into(),
            secret: true,
        });
        let shown = inv.display();
        assert_eq!(
            shown,
            "TOKEN=**** docker run -v '/a b;$(x):/c' DB_PASSWORD=****"
        );
        assert!(!shown.contains("hunter2") && !shown.contains("abc"));
        assert_eq!(shlex::split(&shown[11..]).unwrap()[3], "/a b;$(x):/c");
        inv.stdin = Some(Arg {
            value: "pa55".into(),
            secret: true,
        });
        assert!(inv.display().ends_with("DB_PASSWORD=**** <<< ****"));
    }

    #[test]
    fn a_name_that_may_be_taken_is_said_and_gets_a_suffix_per_try() {
        let mut inv = Invocation::new("docker", "/p".into()).args([
            "run",
            "--name",
            "ann_dev_26-11-30_20.15.00",
            "img:t",
        ]);
        assert_eq!(Step::Run(inv.clone()).display(), inv.display());
        inv.unique_name = Some(2);
        assert_eq!(
            Step::Run(inv.clone()).display(),
            "# the container name ann_dev_26-11-30_20.15.00 gets _2, _3, … if another \
             container has it\ndocker run --name ann_dev_26-11-30_20.15.00 img:t"
        );
        assert_eq!(inv.with_name_try(1), inv);
        assert_eq!(
            inv.with_name_try(3).display(),
            "docker run --name ann_dev_26-11-30_20.15.00_3 img:t"
        );
    }

    #[test]
    fn a_logged_run_shows_where_its_output_goes() {
        let mut inv = Invocation::new("docker", "/p".into()).args(["run", "img:t"]);
        inv.log = Some(LogTo {
            dir: "/p/logs/my job".into(),
            max_size: 1_000_000,
            keep: 30,
            image: "img:t".into(),
        });
        assert_eq!(
            Step::Run(inv.clone()).display(),
            "docker run img:t >> '/p/logs/my job/current' 2>&1  \
             # rotated in '/p/logs/my job': files of 1000000 bytes, 30 kept"
        );
        // The command itself (the banner's) does not include it.
        assert_eq!(inv.display(), "docker run img:t");
    }
}
