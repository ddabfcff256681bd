//! `dockerutils init [TEMPLATE…]`: scaffold a project's `docker/` tree in the current
//! directory from templates built into the binary (`templates/init/`): the template's
//! `docker/<template>/Dockerfile`, a shared `.dockerignore`, and the template's section of
//! `docker/dockerutils.cfg`. It never overwrites: an existing file is kept, and a cfg that
//! exists gets the section appended only when it has no section of that name.

use crate::error::{Error, Result};
use crate::project::cfg::Cfg;
use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A template: what `init NAME` writes for the image `NAME`.
pub(crate) struct Template {
    pub name: &'static str,
    pub about: &'static str,
    pub dockerfile: &'static str,
    /// Its section of `docker/dockerutils.cfg` (`[NAME]` and its keys).
    pub cfg_section: &'static str,
}

pub(crate) const TEMPLATES: &[Template] = &[
    Template {
        name: "dev",
        about: "the project's dependencies; the code is mounted at run time, so edits are live",
        dockerfile: include_str!("../../templates/init/dev/Dockerfile"),
        cfg_section: include_str!("../../templates/init/dev/dockerutils.cfg"),
    },
    Template {
        name: "notebook",
        about: "Jupyter (quay.io/jupyter/minimal-notebook) on port 8888 with the project mounted",
        dockerfile: include_str!("../../templates/init/notebook/Dockerfile"),
        cfg_section: include_str!("../../templates/init/notebook/dockerutils.cfg"),
    },
    Template {
        name: "prod",
        about: "a multi-stage build: a `builder` stage makes wheels, a slim final stage runs them",
        dockerfile: include_str!("../../templates/init/prod/Dockerfile"),
        cfg_section: include_str!("../../templates/init/prod/dockerutils.cfg"),
    },
];

/// The project's `.dockerignore`, shared by every template.
pub(crate) const DOCKERIGNORE: &str = include_str!("../../templates/init/dockerignore");

#[derive(Debug, Parser)]
#[command(
    name = "init",
    bin_name = "dockerutils init",
    display_name = "dockerutils-init",
    version,
    about = "Scaffold docker/<TEMPLATE>/Dockerfile, .dockerignore and docker/dockerutils.cfg in the current directory",
    long_about = "Scaffold a project in the current directory (its root): for each template, \
        docker/<TEMPLATE>/Dockerfile and its section of docker/dockerutils.cfg, plus a .dockerignore. \
        Nothing is ever overwritten: an existing file is kept, and an existing dockerutils.cfg gets \
        the template's section appended only when it has no section of that name. Templates: \
        dev (dependencies in the image, code mounted live), notebook (Jupyter), prod (multi-stage, \
        with a `builder` stage).",
    after_help = "Examples:\n  dockerutils init                 # the dev template\n  dockerutils init dev notebook prod\n  dockerutils init --list\n  dockerutils init prod --dry-run  # show what would be written"
)]
pub(crate) struct Args {
    /// Templates to scaffold, each as the image of its name [default: dev]
    #[arg(value_name = "TEMPLATE", value_parser = clap::builder::PossibleValuesParser::new(template_names()))]
    pub templates: Vec<String>,
    /// List the templates and exit
    #[arg(long)]
    pub list: bool,
    /// Print what would be written, write nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn template_names() -> Vec<&'static str> {
    TEMPLATES.iter().map(|t| t.name).collect()
}

pub(crate) fn template(name: &str) -> Result<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name).ok_or_else(|| {
        Error::Usage(format!(
            "unknown template `{name}`; templates: {}",
            template_names().join(", ")
        ))
    })
}

/// One thing init does (or does not do) to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Create the file, which does not exist.
    Write { path: PathBuf, content: String },
    /// The file exists: it is left as it is.
    Keep { path: PathBuf },
    /// Add a section to the end of an existing cfg.
    AppendSection {
        path: PathBuf,
        section: String,
        content: String,
    },
    /// The cfg has this section already.
    KeepSection { path: PathBuf, section: String },
}

/// The templates named (`dev` when none is), each once, in the order given.
pub(crate) fn selected(names: &[String]) -> Result<Vec<&'static Template>> {
    if names.is_empty() {
        return Ok(vec![template("dev")?]);
    }
    let mut out: Vec<&'static Template> = vec![];
    for name in names {
        let t = template(name)?;
        if !out.iter().any(|o| o.name == t.name) {
            out.push(t);
        }
    }
    Ok(out)
}

/// What `init` does in `root` for the templates `names`.
pub(crate) fn plan(root: &Path, names: &[String]) -> Result<Vec<Action>> {
    let mut actions = vec![];
    let templates = selected(names)?;

    for t in &templates {
        let path = root.join("docker").join(t.name).join("Dockerfile");
        actions.push(match path.exists() {
            true => Action::Keep { path },
            false => Action::Write {
                path,
                content: t.dockerfile.to_string(),
            },
        });
    }
    let ignore = root.join(".dockerignore");
    actions.push(match ignore.exists() {
        true => Action::Keep { path: ignore },
        false => Action::Write {
            path: ignore,
            content: DOCKERIGNORE.to_string(),
        },
    });

    let cfg_path = root.join("docker").join("dockerutils.cfg");
    if cfg_path.exists() {
        // Only whole sections are added, and only to a cfg that reads: appending to a
        // broken file would hide where it is broken.
        let cfg = Cfg::load(&cfg_path)?;
        let mut existing = String::new();
        for t in &templates {
            if cfg.has_section(t.name) {
                actions.push(Action::KeepSection {
                    path: cfg_path.clone(),
                    section: t.name.to_string(),
                });
            } else {
                if existing.is_empty() {
                    existing = std::fs::read_to_string(&cfg_path)
                        .map_err(|e| Error::io(format!("cannot read {}", cfg_path.display()), e))?;
                }
                // Separated from what is above by a blank line.
                let before = match (existing.is_empty(), existing.ends_with('\n')) {
                    (true, _) => "",
                    (false, true) => "\n",
                    (false, false) => "\n\n",
                };
                existing = format!("{existing}{before}{}", t.cfg_section);
                actions.push(Action::AppendSection {
                    path: cfg_path.clone(),
                    section: t.name.to_string(),
                    content: format!("{before}{}", t.cfg_section),
                });
            }
        }
    } else {
        let content = templates
            .iter()
            .map(|t| t.cfg_section)
            .collect::<Vec<_>>()
            .join("\n");
        actions.push(Action::Write {
            path: cfg_path,
            content,
        });
    }
    Ok(actions)
}

/// `path` relative to `root`, for messages.
fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

impl Action {
    pub(crate) fn describe(&self, root: &Path) -> String {
        match self {
            Action::Write { path, .. } => format!("wrote {}", shown(root, path)),
            Action::Keep { path } => format!("kept  {} (it exists)", shown(root, path)),
            Action::AppendSection { path, section, .. } => {
                format!("added [{section}] to {}", shown(root, path))
            }
            Action::KeepSection { path, section } => format!(
                "kept  {} (it has a [{section}] section already)",
                shown(root, path)
            ),
        }
    }

    fn dry_run(&self, root: &Path) -> String {
        match self {
            Action::Write { path, .. } => format!("would write {}", shown(root, path)),
            Action::AppendSection { path, section, .. } => {
                format!("would add [{section}] to {}", shown(root, path))
            }
            _ => self.describe(root),
        }
    }

    fn run(&self) -> Result<()> {
        let io = |path: &Path, e| Error::io(format!("cannot write {}", path.display()), e);
        match self {
            Action::Write { path, content } => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
                }
                // create_new: never overwrite, even a file made since the plan.
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(content.as_bytes()))
                    .map_err(|e| io(path, e))
            }
            Action::AppendSection { path, content, .. } => std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(content.as_bytes()))
                .map_err(|e| io(path, e)),
            Action::Keep { .. } | Action::KeepSection { .. } => Ok(()),
        }
    }
}

/// The commands to run next, for the templates scaffolded.
fn next_steps(templates: &[&Template]) -> String {
    let mut out = String::from("Next:\n");
    for t in templates {
        out.push_str(&format!("  build-image {0}\n  run-image {0}\n", t.name));
    }
    out
}

fn list() -> String {
    let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
    TEMPLATES
        .iter()
        .map(|t| format!("{:<width$}  {}\n", t.name, t.about))
        .collect()
}

pub(crate) fn main(args: Args) -> i32 {
    if args.list {
        print!("{}", list());
        return 0;
    }
    let root = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            return super::fail("init", &Error::io("cannot read the current directory", e));
        }
    };
    if let Some(above) = root.ancestors().skip(1).find(|d| d.join("docker").is_dir()) {
        eprintln!(
            "init: note: {} holds a docker/ tree: this makes {} a project of its own \
             (run `dockerutils init` at {} to add to that one)",
            above.display(),
            root.display(),
            above.display()
        );
    }
    let actions = match plan(&root, &args.templates) {
        Ok(a) => a,
        Err(e) => return super::fail("init", &e),
    };
    for action in &actions {
        if args.dry_run {
            println!("{}", action.dry_run(&root));
            continue;
        }
        if let Err(e) = action.run() {
            return super::fail("init", &e);
        }
        println!("{}", action.describe(&root));
    }
    if !args.dry_run {
        // `plan` has checked the names.
        let templates = selected(&args.templates).unwrap_or_default();
        print!("{}", next_steps(&templates));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("du-init-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn templates_read_as_cfg_and_have_their_section() {
        for t in TEMPLATES {
            let cfg = Cfg::parse(t.cfg_section, Path::new("dockerutils.cfg")).unwrap();
            assert!(cfg.has_section(t.name), "{}", t.name);
            assert!(t.dockerfile.lines().any(|l| l.starts_with("FROM ")));
        }
        assert!(crate::engine::has_builder_stage(
            template("prod").unwrap().dockerfile
        ));
        assert!(!crate::engine::has_builder_stage(
            template("dev").unwrap().dockerfile
        ));
    }

    #[test]
    fn a_new_project_gets_every_file_and_one_cfg_with_every_section() {
        let root = tmp("new");
        let actions = plan(&root, &["dev".into(), "prod".into()]).unwrap();
        let written: Vec<String> = actions
            .iter()
            .map(|a| match a {
                Action::Write { path, .. } => shown(&root, path),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            written,
            [
                "docker/dev/Dockerfile",
                "docker/prod/Dockerfile",
                ".dockerignore",
                "docker/dockerutils.cfg"
            ]
        );
        let Action::Write { content, .. } = &actions[3] else {
            unreachable!()
        };
        let cfg = Cfg::parse(content, Path::new("x")).unwrap();
        assert!(cfg.has_section("dev") && cfg.has_section("prod"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_existing_cfg_gets_only_missing_sections_after_a_blank_line() {
        let root = tmp("cfg");
        std::fs::create_dir_all(root.join("docker")).unwrap();
        let cfg = root.join("docker/dockerutils.cfg");
        std::fs::write(&cfg, "[dev]\ncmd=pytest").unwrap();
        let actions = plan(&root, &["dev".into(), "notebook".into()]).unwrap();
        assert!(actions.contains(&Action::KeepSection {
            path: cfg.clone(),
            section: "dev".into()
        }));
        for a in &actions {
            a.run().unwrap();
        }
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(
            text.starts_with("[dev]\ncmd=pytest\n\n[notebook]\n"),
            "{text}"
        );
        let parsed = Cfg::load(&cfg).unwrap();
        assert_eq!(parsed.get("dev", "cmd").unwrap().as_deref(), Some("pytest"));
        assert!(parsed.get("notebook", "ports").unwrap().is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn unknown_templates_are_usage_errors_that_list_the_templates() {
        let err = plan(Path::new("/nonexistent"), &["web".into()]).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::USAGE);
        assert!(err.to_string().contains("dev, notebook, prod"), "{err}");
    }
}
