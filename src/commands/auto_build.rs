//! `auto-build [IMAGE…] [--publish]`: the cron-friendly rebuild of a project's image
//! chain. Each image whose inputs, sealed source branch or parent changed is rebuilt, in
//! dependency order (build-image's `--if-changed`); with `--publish`, what was built is
//! pushed. A lock keeps overlapping runs apart; one log line per image says what became
//! of it and why.

use crate::aws::AwsArgs;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::project::build::{self, Outcome, Parts};
use crate::project::cfg::keys;
use crate::project::publish;
use clap::Parser;
use std::collections::HashMap;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "auto-build",
    version,
    about = "Rebuild (and with --publish push) the project's images whose inputs, source branch or parent changed",
    long_about = "Rebuild the project's images whose inputs changed (Dockerfile, copied files, build args), \
        whose sealed source branch moved (`source_branch=` in an image's section: the branch's tree, \
        exported with `git archive`, is the build context, never the working copy), or whose parent \
        image was rebuilt; in dependency order; with --publish, push what was built (publish-image). \
        Overlapping runs are kept apart by a lock; one line per image says built, up to date or failed, \
        and why; the exit code is non-zero when any failed.",
    after_help = "Examples:\n  auto-build\n  auto-build --publish -j 2\n  */15 * * * * cd /srv/myproj && auto-build --publish >> /var/log/myproj-build.log 2>&1\n\n\
dockerutils.cfg:\n  [prod]\n  source_branch=main          # build prod from main's committed tree\n  image_repo=aws\n  publication_tag={account}.dkr.ecr.{region}.amazonaws.com/{image}:{tag}"
)]
pub(crate) struct Args {
    /// Images to consider (with the images they are built from) [default: all]
    pub images: Vec<String>,
    /// Push each image built (publish-image, with its section's image_repo/publication_tag)
    #[arg(long)]
    pub publish: bool,
    /// Build up to N independent images at once
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// An exclusive, non-blocking lock on a file (flock): held until dropped.
pub(crate) struct Lock {
    _file: std::fs::File,
}

/// The lock of a project's auto-build: in a directory only this user can write
/// (`$XDG_RUNTIME_DIR/dockerutils`, else `~/.cache/dockerutils`, made 0700), never in the
/// project. Not a predictable name in /tmp: another user could create it first and hold
/// it, and every run would then do nothing.
pub(crate) fn lock_path(root: &Path) -> Result<PathBuf> {
    use sha2::Digest;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let hash = format!(
        "{:x}",
        sha2::Sha256::digest(root.to_string_lossy().as_bytes())
    );
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && d.is_dir())
        .or_else(dirs::cache_dir)
        .ok_or_else(|| {
            Error::Usage(
                "auto-build needs a directory for its lock: set XDG_RUNTIME_DIR or HOME".into(),
            )
        })?;
    let dir = base.join("dockerutils");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(Error::Usage(format!(
            "{} is not a directory that only you can write: auto-build keeps its lock there; \
             remove it, or point XDG_RUNTIME_DIR elsewhere",
            dir.display()
        )));
    }
    Ok(dir.join(format!("auto-build-{}.lock", &hash[..16])))
}

pub(crate) fn try_lock(path: &Path) -> Result<Option<Lock>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open the lock {}", path.display()), e))?;
    // SAFETY: flock(2) on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    Ok((rc == 0).then_some(Lock { _file: file }))
}

/// `git archive BRANCH` unpacked into a new directory: the branch's committed tree.
fn export_branch(root: &Path, branch: &str, into: &Path) -> Result<()> {
    // A branch is a revision, never an option: `source_branch=--output=/some/file` must
    // not reach git as one (`--end-of-options`, and a leading `-` refused outright).
    if branch.starts_with('-') {
        return Err(Error::Usage(format!(
            "source_branch={branch}: a branch name cannot start with `-`"
        )));
    }
    let mut git = crate::process::spawn(
        crate::process::Command::new("git")
            .args(["archive", "--format=tar", "--end-of-options", branch])
            .current_dir(root)
            .stdout(crate::process::Stdio::piped())
            .stderr(crate::process::Stdio::piped()),
    )
    .map_err(|e| Error::spawn("git", e))?;
    let mut archive = tar::Archive::new(git.stdout.take().unwrap());
    let unpacked = archive.unpack(into);
    // tar stops reading at the end-of-archive blocks; git may still be writing its padding,
    // and a closed pipe would kill it with SIGPIPE: read the rest before waiting for it.
    let _ = std::io::copy(&mut archive.into_inner(), &mut std::io::sink());
    let out = git
        .wait_with_output()
        .map_err(|e| Error::io("waiting for git", e))?;
    if !out.status.success() {
        return Err(Error::Tool(format!(
            "source_branch={branch}: `git archive {branch}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    unpacked.map_err(|e| Error::io(format!("unpacking {branch}'s tree"), e))
}

fn now() -> String {
    let (y, mo, d, h, mi, s) = crate::time::utc_now();
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The build parts, with images of a `source_branch` built from that branch's export
/// (its Dockerfile read, its FROMs resolved and its files copied there).
fn parts(project: &Project, args: &Args, exports: &Path) -> Result<Parts> {
    let chosen: Vec<String> = if args.images.is_empty() {
        vec!["all".into()]
    } else {
        args.images.clone()
    };
    let mut exported: HashMap<String, PathBuf> = HashMap::new();
    let mut context_of = |target: &str| -> Result<PathBuf> {
        let cfg = &project.cfg;
        let branch = if cfg.has_section(target) {
            cfg.get(target, keys::SOURCE_BRANCH)?
        } else {
            None
        };
        let Some(branch) = branch.filter(|b| !b.is_empty()) else {
            return Ok(project.root.clone());
        };
        if let Some(dir) = exported.get(&branch) {
            return Ok(dir.clone());
        }
        let dir = exports.join(format!("{}", exported.len()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot make a temp dir", e))?;
        export_branch(&project.root, &branch, &dir)?;
        exported.insert(branch, dir.clone());
        Ok(dir)
    };
    // One time for the timestamp tags of the whole run, whatever images it is asked for.
    let stamp = crate::engine::tags::utc_stamp();
    let mut all = Parts::default();
    for image in chosen {
        let bargs = build::Request {
            image: image.clone(),
            force_build_base: false,
            image_name: None,
            image_tag: None,
            pull_base: false,
            with_deps: image != "all",
            if_changed: true,
            jobs: args.jobs,
        };
        let p = build::parts_in(project, &bargs, &stamp, &mut context_of)?;
        if all.before.is_empty() {
            all.before = p.before;
            all.cleanup = p.cleanup;
        }
        for part in p.images {
            if !all.images.iter().any(|x| x.target == part.target) {
                all.images.push(part);
            }
        }
    }
    Ok(all)
}

fn run(args: &Args) -> Result<i32> {
    let ctx = Context::from_process();
    let project = Project::discover_here(&ctx.user)?;
    let lock_file = lock_path(&project.root)?;
    let Some(_lock) = try_lock(&lock_file)? else {
        eprintln!(
            "{} auto-build: another auto-build of {} is running (lock {}): nothing done",
            now(),
            project.root.display(),
            lock_file.display()
        );
        return Ok(0);
    };
    let exports = tempfile::Builder::new()
        .prefix("dockerutils-auto-build-")
        .tempdir()
        .map_err(|e| Error::io("cannot make a temp dir", e))?;
    let parts = parts(&project, args, exports.path())?;
    let names: Vec<(String, String, Option<String>)> = parts
        .images
        .iter()
        .map(|p| {
            let branch = (p.context != project.root).then(|| {
                project
                    .cfg
                    .get(&p.target, keys::SOURCE_BRANCH)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            });
            (p.target.clone(), p.image.to_string(), branch)
        })
        .collect();
    eprintln!(
        "{} auto-build: {} ({} image{})",
        now(),
        project.root.display(),
        names.len(),
        if names.len() == 1 { "" } else { "s" }
    );
    let (mut rc, outcomes) = build::schedule(&project, parts, args.jobs, true);
    for ((target, image, branch), outcome) in names.iter().zip(&outcomes) {
        let from = branch
            .as_ref()
            .map(|b| format!(" from branch {b}"))
            .unwrap_or_default();
        let line = match outcome {
            Some(Outcome::Built) => format!("built{from}: its inputs changed"),
            Some(Outcome::UpToDate) => format!("up to date{from}: nothing changed"),
            Some(Outcome::Failed(code)) => format!("FAILED{from}: the build exited with {code}"),
            Some(Outcome::Blocked(parent)) => format!("FAILED: not built, because {parent} failed"),
            Some(Outcome::Interrupted) => "FAILED: not tried, the run was interrupted".into(),
            Some(Outcome::Cut) => "FAILED: its build was interrupted".into(),
            None => "FAILED: not tried, the steps before the builds failed".into(),
        };
        eprintln!("{} auto-build: {target} ({image}): {line}", now());
        let has_repo = project.cfg.has_section(target)
            && project
                .cfg
                .get(target, keys::IMAGE_REPO)?
                .is_some_and(|r| !r.is_empty());
        if args.publish && outcome == &Some(Outcome::Built) && !has_repo {
            eprintln!(
                "{} auto-build: {target} ({image}): not published: [{target}] has no image_repo",
                now()
            );
        } else if args.publish && outcome == &Some(Outcome::Built) {
            let pargs = publish::Request {
                image: target.clone(),
                image_name: None,
                dry_run: false,
                aws: args.aws.clone(),
            };
            let published = publish::publish(&project, &pargs, &ctx)
                .unwrap_or_else(|e| super::fail("auto-build", &e));
            let said = if published == 0 {
                "published".to_string()
            } else {
                format!("FAILED to publish (exit {published})")
            };
            eprintln!("{} auto-build: {target} ({image}): {said}", now());
            if published != 0 && rc == 0 {
                rc = published;
            }
        }
    }
    Ok(rc)
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("auto-build", run(&args))
}
