//! The project convention: a root directory holding `docker/<image>/Dockerfile` trees and
//! `docker/dockerutils.cfg`; image names `<project>-<image>:<user>` unless the cfg says
//! otherwise.

use crate::cfg::Cfg;
use crate::cfg::keys;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub struct Project {
    /// The directory that holds `docker/`.
    pub root: PathBuf,
    /// The root's base name, lower-cased: the prefix of image names.
    pub name: String,
    pub cfg: Cfg,
    /// The user name: the default tag.
    pub user: String,
    /// `version()`, asked of git once.
    pub version: std::sync::OnceLock<String>,
}

/// A docker image reference, `name:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub name: String,
    pub tag: String,
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// The user name, as Python's `getpass.getuser()` finds it (the original tags images with it).
pub fn user_name() -> String {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| whoami::username().unwrap_or_else(|_| "unknown".into()))
}

impl Project {
    /// Finds the project root at `start` or the nearest directory above it that holds a
    /// `docker/` directory, like git finds its work tree.
    pub fn discover(start: &Path, user: &str) -> Result<Project> {
        let root = start
            .ancestors()
            .find(|dir| dir.join("docker").is_dir())
            .ok_or_else(|| Error::NoProject {
                start: start.to_owned(),
            })?
            .to_owned();
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let cfg = Cfg::load(&root.join("docker").join("dockerutils.cfg"))?;
        Ok(Project {
            root,
            name,
            cfg,
            user: user.to_owned(),
            version: Default::default(),
        })
    }

    /// From the current directory: how the commands find their project. Keys of the cfg
    /// that look misspelt are reported on stderr, once per process (`warn_misspelt_keys`).
    pub fn discover_here(user: &str) -> Result<Project> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::io("cannot read the current directory", e))?;
        let project = Project::discover(&cwd, user)?;
        project.warn_misspelt_keys();
        Ok(project)
    }

    /// Warns about each key of the cfg that no command reads but that is close to one
    /// that would be read in its section (`cfg::keys::misspelt`): `volume=` is ignored,
    /// `volumes=` is not. Once per process, whatever loads the cfg again (build threads,
    /// serve-hooks' deploys); never for TAB completion, which uses `discover`.
    pub fn warn_misspelt_keys(&self) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if self.cfg.sections().next().is_none()
                && self.cfg.own_keys(crate::cfg::DEFAULT_SECTION).is_empty()
            {
                return;
            }
            let mut images = self.image_dirs().unwrap_or_default();
            images.extend(self.synthetic_images().unwrap_or_default());
            for m in keys::misspelt(&self.cfg, &images) {
                eprintln!("{}:{}: {m}", self.cfg.path().display(), m.line);
            }
        });
    }

    pub fn docker_dir(&self) -> PathBuf {
        self.root.join("docker")
    }

    /// The base name of the root as it is (not lower-cased): the original's `{project}`.
    pub fn dir_name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The project's version for `{version}`: `git describe --tags --always --dirty` at
    /// the root, or `unknown` outside git (or without git).
    pub fn version(&self) -> String {
        self.version.get_or_init(|| self.git_describe()).clone()
    }

    fn git_describe(&self) -> String {
        std::process::Command::new("git")
            .args(["describe", "--tags", "--always", "--dirty"])
            .current_dir(&self.root)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unknown".into())
    }

    /// The subdirectories of `docker/`, sorted, `base` first (others are usually built on it).
    pub fn image_dirs(&self) -> Result<Vec<String>> {
        let dir = self.docker_dir();
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort_by_key(|n| (n != "base", n.clone()));
        Ok(names)
    }

    /// `[run_image] synthetic_images=a,b`: images that only exist in the cfg.
    pub fn synthetic_images(&self) -> Result<Vec<String>> {
        Ok(self
            .cfg
            .get(keys::RUN_IMAGE, keys::SYNTHETIC_IMAGES)?
            .map(|list| {
                list.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The `docker/` subdirectory an image is built from: its own, or the one a synthetic
    /// image's `name=` runs.
    pub fn subdir(&self, image: &str) -> Result<String> {
        if !self.docker_dir().join(image).is_dir()
            && self.synthetic_images()?.iter().any(|s| s == image)
            && let Some(name) = self.cfg.get(image, keys::NAME)?
        {
            return Ok(name);
        }
        Ok(image.to_string())
    }

    /// Checks that `image` is one of `valid`, or says which are.
    pub fn check_image(image: &str, valid: &[String]) -> Result<()> {
        if valid.iter().any(|v| v == image) {
            Ok(())
        } else {
            Err(Error::UnknownImage {
                image: image.into(),
                valid: valid.to_vec(),
            })
        }
    }

    pub fn dockerfile(&self, subdir: &str) -> PathBuf {
        self.docker_dir().join(subdir).join("Dockerfile")
    }

    /// The Dockerfile path relative to the root, as given to `docker build -f`.
    pub fn dockerfile_arg(subdir: &str) -> String {
        format!("docker/{subdir}/Dockerfile")
    }

    /// The image name and tag of an image type, as 2.0.7's `get_image_designation`:
    /// a section's `name=` replaces the subdirectory (prefixed with the project unless
    /// `prefix` is False/false/F/f); `tag=` else the user name.
    pub fn image_ref(&self, image: &str) -> Result<ImageRef> {
        let cfg = &self.cfg;
        let mut name = format!("{}-{}", self.name, image);
        if cfg.has_section(image) {
            if let Some(given) = cfg.get(image, keys::NAME)? {
                let prefixed = !matches!(
                    cfg.get(image, keys::PREFIX)?.as_deref(),
                    Some("False" | "false" | "F" | "f")
                );
                name = if prefixed {
                    format!("{}-{}", self.name, given)
                } else {
                    given
                };
            }
        }
        let tag = match cfg.has_section(image) {
            true => cfg.get(image, keys::TAG)?,
            false => None,
        }
        .unwrap_or_else(|| self.user.clone());
        Ok(ImageRef { name, tag })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(cfg: &str) -> Project {
        Project {
            root: "/src/MyProj".into(),
            name: "myproj".into(),
            cfg: Cfg::parse(cfg, Path::new("dockerutils.cfg")).unwrap(),
            user: "ann".into(),
            version: Default::default(),
        }
    }

    #[test]
    fn names_follow_the_convention() {
        let p = project(
            "[dev]\ntag=exp1\n[nb]\nname=jupyter/minimal\nprefix=False\ntag=latest\n[shell]\nname=dev\n",
        );
        let user = "ann";
        assert_eq!(
            p.image_ref("prod").unwrap().to_string(),
            format!("myproj-prod:{user}")
        );
        assert_eq!(p.image_ref("dev").unwrap().to_string(), "myproj-dev:exp1");
        assert_eq!(
            p.image_ref("nb").unwrap().to_string(),
            "jupyter/minimal:latest"
        );
        assert_eq!(
            p.image_ref("shell").unwrap().to_string(),
            format!("myproj-dev:{user}")
        );
    }

    #[test]
    fn discovery_walks_up_and_lowercases() {
        let tmp = std::env::temp_dir().join(format!("du-discover-{}", std::process::id()));
        let root = tmp.join("Some.Proj");
        std::fs::create_dir_all(root.join("docker/dev")).unwrap();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        let p = Project::discover(&root.join("src/deep"), "ann").unwrap();
        assert_eq!(p.root, root);
        assert_eq!(p.name, "some.proj");
        assert_eq!(p.dir_name(), "Some.Proj");
        let inside = Project::discover(&root.join("docker/dev"), "ann").unwrap();
        assert_eq!(inside.root, root);
        std::fs::remove_dir_all(&tmp).unwrap();
        assert!(matches!(
            Project::discover(&tmp, "ann"),
            Err(Error::NoProject { .. })
        ));
    }
}
