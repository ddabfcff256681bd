//! The project convention: a root directory holding `docker/<image>/Dockerfile` trees and
//! `docker/dockerutils.cfg`; image names `<project>-<image>:<user>` unless the cfg says
//! otherwise.

pub(crate) mod build;
pub(crate) mod cfg;
pub(crate) mod chain;
pub(crate) mod expand;
pub(crate) mod publish;
pub(crate) mod run;

use crate::error::{Error, Result};
use crate::project::cfg::Cfg;
use crate::project::cfg::keys;
use std::path::{Path, PathBuf};

pub(crate) struct Project {
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
pub(crate) struct ImageRef {
    pub name: String,
    pub tag: String,
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// The user name, as Python's `getpass.getuser()` finds it (the original tags images with it).
pub(crate) fn user_name() -> String {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| whoami::username().unwrap_or_else(|_| "unknown".into()))
}

/// The project root above `start` (see [`Project::discover`]); `env` reads the variables
/// that relax the rules.
fn find_root(start: &Path, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let across = env("DOCKERUTILS_DISCOVERY_ACROSS_FILESYSTEM").is_some_and(|v| !v.is_empty());
    let device = |dir: &Path| std::fs::metadata(dir).map(|m| m.dev()).ok();
    let start_device = device(start);
    let mut stopped_at = None;
    let mut found = None;
    for dir in start.ancestors() {
        if !across && device(dir) != start_device {
            stopped_at = Some(dir.to_owned());
            break;
        }
        if dir.join("docker").is_dir() {
            found = Some(dir.to_owned());
            break;
        }
    }
    let Some(root) = found else {
        return Err(Error::NoProject {
            start: start.to_owned(),
            boundary: stopped_at,
        });
    };
    let docker = root.join("docker");
    let owner = std::fs::metadata(&docker)
        .map_err(|e| Error::io(format!("cannot read {}", docker.display()), e))?
        .uid();
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    let sudo = env("SUDO_UID").and_then(|u| u.to_str()?.parse::<u32>().ok());
    let listed = env("DOCKERUTILS_SAFE_DIRECTORY").is_some_and(|list| {
        std::env::split_paths(&list).any(|p| p.as_os_str() == "*" || p == root)
    });
    if owner == me || (me == 0 && sudo == Some(owner)) || listed {
        return Ok(root);
    }
    Err(Error::UnsafeProject { root, owner })
}

impl Project {
    /// Finds the project root at `start` or the nearest directory above it that holds a
    /// `docker/` directory, like git finds its work tree, and with git's two limits:
    ///
    /// - the walk stops at a filesystem boundary (a mounted network share or a container's
    ///   bind mount is not part of the project above it), unless
    ///   `DOCKERUTILS_DISCOVERY_ACROSS_FILESYSTEM` is set (git's
    ///   GIT_DISCOVERY_ACROSS_FILESYSTEM);
    /// - a `docker/` directory owned by another user is refused (git's safe.directory):
    ///   its cfg's `pre_build_script` would run as whoever runs the command, so a
    ///   `docker/` planted in `/tmp` or a shared directory must not be picked up. Allowed
    ///   when it is yours, yours through sudo (`SUDO_UID`, as git allows), or listed in
    ///   `DOCKERUTILS_SAFE_DIRECTORY` (project roots separated by `:`, or `*`).
    pub(crate) fn discover(start: &Path, user: &str) -> Result<Project> {
        let root = find_root(start, |name| std::env::var_os(name))?;
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
    pub(crate) fn discover_here(user: &str) -> Result<Project> {
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
    pub(crate) fn warn_misspelt_keys(&self) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            if self.cfg.sections().next().is_none()
                && self
                    .cfg
                    .own_keys(crate::project::cfg::DEFAULT_SECTION)
                    .is_empty()
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

    pub(crate) fn docker_dir(&self) -> PathBuf {
        self.root.join("docker")
    }

    /// The base name of the root as it is (not lower-cased): the original's `{project}`.
    pub(crate) fn dir_name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The project's version for `{version}`: `git describe --tags --always --dirty` at
    /// the root, or `unknown` outside git (or without git).
    pub(crate) fn version(&self) -> String {
        self.version.get_or_init(|| self.git_describe()).clone()
    }

    fn git_describe(&self) -> String {
        crate::process::output(
            crate::process::Command::new("git")
                .args(["describe", "--tags", "--always", "--dirty"])
                .current_dir(&self.root),
        )
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
    }

    /// The subdirectories of `docker/`, sorted, `base` first (others are usually built on it).
    pub(crate) fn image_dirs(&self) -> Result<Vec<String>> {
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
    pub(crate) fn synthetic_images(&self) -> Result<Vec<String>> {
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

    /// The names the commands take for the project's images: the subdirectories of
    /// `docker/` and the cfg's synthetic images.
    pub(crate) fn image_names(&self) -> Result<Vec<String>> {
        let mut names = self.image_dirs()?;
        names.extend(self.synthetic_images()?);
        Ok(names)
    }

    /// The `docker/` subdirectory an image is built from: its own, or the one a synthetic
    /// image's `name=` runs.
    pub(crate) fn subdir(&self, image: &str) -> Result<String> {
        if !self.docker_dir().join(image).is_dir()
            && self.synthetic_images()?.iter().any(|s| s == image)
            && let Some(name) = self.cfg.get(image, keys::NAME)?
        {
            return Ok(name);
        }
        Ok(image.to_string())
    }

    /// Checks that `image` is one of `valid`, or says which are.
    pub(crate) fn check_image(image: &str, valid: &[String]) -> Result<()> {
        if valid.iter().any(|v| v == image) {
            Ok(())
        } else {
            Err(Error::UnknownImage {
                image: image.into(),
                valid: valid.to_vec(),
            })
        }
    }

    pub(crate) fn dockerfile(&self, subdir: &str) -> PathBuf {
        self.docker_dir().join(subdir).join("Dockerfile")
    }

    /// The Dockerfile path relative to the root, as given to `docker build -f`.
    pub(crate) fn dockerfile_arg(subdir: &str) -> String {
        format!("docker/{subdir}/Dockerfile")
    }

    /// The image name and tag of an image type, as 2.0.7's `get_image_designation`:
    /// a section's `name=` replaces the subdirectory (prefixed with the project unless
    /// `prefix` is False/false/F/f); `tag=` else the user name.
    pub(crate) fn image_ref(&self, image: &str) -> Result<ImageRef> {
        let cfg = &self.cfg;
        let mut name = format!("{}-{}", self.name, image);
        if cfg.has_section(image)
            && let Some(given) = cfg.get(image, keys::NAME)?
        {
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

    /// A `docker/` of another user is refused unless it is the sudo user's or listed;
    /// the hint names the variable that allows it.
    #[test]
    fn another_users_docker_dir_is_refused() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("theirs");
        std::fs::create_dir_all(root.join("docker/dev")).unwrap();
        let mine = std::fs::metadata(tmp.path()).unwrap().uid();
        let other = if mine == 65534 { 65533 } else { 65534 };
        let c = std::ffi::CString::new(root.join("docker").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string. Needs root (the test suite runs as root, like CI).
        if unsafe { libc::chown(c.as_ptr(), other, other) } != 0 {
            panic!("chown needs root: run the tests as root (tests/run.sh)");
        }
        let none = |_: &str| None;
        let err = find_root(&root.join("docker/dev"), none).unwrap_err();
        assert!(
            matches!(err, Error::UnsafeProject { owner, .. } if owner == other),
            "{err}"
        );
        assert!(
            err.hint().unwrap().contains("DOCKERUTILS_SAFE_DIRECTORY="),
            "{err:?}"
        );
        let listed = root.clone().into_os_string();
        let env = |name: &str| (name == "DOCKERUTILS_SAFE_DIRECTORY").then(|| listed.clone());
        assert_eq!(find_root(&root, env).unwrap(), root);
        let star = |name: &str| (name == "DOCKERUTILS_SAFE_DIRECTORY").then(|| "/x:*".into());
        assert_eq!(find_root(&root, star).unwrap(), root);
        // SAFETY: geteuid(2) cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            let sudo = |name: &str| (name == "SUDO_UID").then(|| other.to_string().into());
            assert_eq!(find_root(&root, sudo).unwrap(), root);
        }
    }

    /// The walk up stops at a mount point, as git's does; the variable lets it go on.
    #[test]
    fn discovery_stops_at_a_filesystem_boundary() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("proj");
        let mnt = root.join("mnt");
        std::fs::create_dir_all(root.join("docker/dev")).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let status = crate::process::run(
            crate::process::Command::new("mount")
                .args(["-t", "tmpfs", "tmpfs"])
                .arg(&mnt),
        )
        .expect("mount(8)");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (run the tests as root)"
        );
        std::fs::create_dir_all(mnt.join("deep")).unwrap();
        let none = |_: &str| None;
        let found = find_root(&mnt.join("deep"), none);
        let across =
            |name: &str| (name == "DOCKERUTILS_DISCOVERY_ACROSS_FILESYSTEM").then(|| "1".into());
        let found_across = find_root(&mnt.join("deep"), across);
        let _ = crate::process::run(crate::process::Command::new("umount").arg(&mnt));
        let err = found.unwrap_err();
        assert!(
            matches!(&err, Error::NoProject { boundary: Some(b), .. } if b == &root),
            "{err:?}"
        );
        assert!(
            err.hint()
                .unwrap()
                .contains("DOCKERUTILS_DISCOVERY_ACROSS_FILESYSTEM")
        );
        assert_eq!(found_across.unwrap(), root);
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
