//! Building the project's images: the plan of one image, a chain or `all` (and `clean`),
//! the FROM of a project image resolved to its tag, input digests for `--if-changed`,
//! and the scheduler that runs independent builds in parallel. build-image, auto-build,
//! genversion and run-notebook build through it.

use crate::context::Context;
use crate::engine;
use crate::engine::tags;
use crate::error::{Error, Result};
use crate::plan::{Invocation, OnFailure, Plan, Step};
use crate::project::cfg::Cfg;
use crate::project::cfg::keys;
use crate::project::chain;
use crate::project::{ImageRef, Project};
use std::collections::HashMap;
use std::path::PathBuf;

/// What to build: the flags of `build-image` that decide the plan (auto-build and
/// run-notebook make one too).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Request {
    /// Image to build: a subdirectory of docker/, `all` or `clean`
    pub image: String,
    /// Build docker/base first (when it exists), with --pull if the cfg says pull_FROM_on_force=True
    #[arg(
        short = 'f',
        long = "force_build_base",
        visible_alias = "force-build-base"
    )]
    pub force_build_base: bool,
    /// Use this image name rather than the default (only for a named image)
    #[arg(short = 'i', long = "image_name", visible_alias = "image-name")]
    pub image_name: Option<String>,
    /// Use this image tag rather than the default
    #[arg(short = 't', long = "image_tag", visible_alias = "image-tag")]
    pub image_tag: Option<String>,
    /// Pull the FROM images as part of the build (docker build --pull)
    #[arg(short = 'p', long = "pull_base", visible_alias = "pull-base")]
    pub pull_base: bool,
    /// Build the images IMAGE is built from (its project FROM images) first, in order
    #[arg(long)]
    pub with_deps: bool,
    /// Skip an image whose inputs (Dockerfile, copied files, build args, parent images)
    /// are those of the image already built [default: `[build_image] if_changed` in the cfg]
    #[arg(long)]
    pub if_changed: bool,
    /// Build up to N independent images at once
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
}

/// What a `FROM` (or `COPY --from`) naming one of the project's images means, the same
/// for every build mode, `--dry-run`, `--if-changed` and auto-build. Without a tag, it
/// means the image as the project tags it: as this run tags it when the run builds it (its
/// `-t`, or this run's time for `tag=timestamp`), else with its section's `tag` or the user
/// name, or for `tag=timestamp` its newest build here. `latest` means the same for a
/// timestamp image only (which has no `latest` of its own); any other tag is left as
/// written. The Dockerfile is rewritten so (and given to docker on stdin) before anything
/// reads it: the build, the input digest and the dry run all see the rewritten text.
/// (`project_parents` orders the builds by image name, whatever the tag.)
struct Froms<'a> {
    project: &'a Project,
    /// The project's images by name: their subdirectories.
    by_name: HashMap<String, String>,
    /// The images this run builds, with the tag it gives each.
    in_run: HashMap<String, String>,
}

/// The engine the docker CLI talks to, as an error names it: docked (or any
/// DOCKER_HOST), the images of this machine are not the ones that count.
fn engine_named() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => format!("the engine at DOCKER_HOST={host}"),
        _ => "the local engine".to_string(),
    }
}

/// Image `of`'s Dockerfile with the project images it names resolved by [`Froms`].
struct Resolved {
    dockerfile: String,
    /// Was anything rewritten?
    rewritten: bool,
    /// The steps that stop the build when a project image it is built from, which this
    /// run does not build, is not here (one `docker image inspect` each).
    checks: Vec<Step>,
}

impl Froms<'_> {
    /// Image `of`'s Dockerfile (read with its build args) with the project images it
    /// names resolved, and the checks that the ones this run does not build are here.
    fn resolve(&self, of: &str, dockerfile: &str, build_args: &[String]) -> Result<Resolved> {
        let mut checks: Vec<Step> = vec![];
        let mut require = |image: &str, dir: &str| {
            let missing = Error::ParentMissing {
                image: of.to_string(),
                parent: dir.to_string(),
                what: format!("{image} is not in {}", engine_named()),
            };
            let step = Step::RequireImage {
                image: image.to_string(),
                error: missing.to_string(),
                hint: missing.hint(),
            };
            if !checks.contains(&step) {
                checks.push(step);
            }
        };
        let (dockerfile, rewritten) = chain::rewrite(
            dockerfile,
            &chain::build_arg_values(build_args),
            |reference| {
                let name = chain::reference_name(reference);
                let Some(dir) = self.by_name.get(name).filter(|d| *d != of) else {
                    return Ok(None);
                };
                let tag = &reference[name.len()..];
                let own = self.project.image_ref(dir)?.tag;
                let timestamped = own == tags::TIMESTAMP;
                let run_tag = self.in_run.get(dir);
                if tag.is_empty() || (timestamped && tag == ":latest") {
                    let resolved = match run_tag {
                        Some(t) => format!("{name}:{t}"),
                        None if timestamped => {
                            // Which build is meant depends on what is here: asked now.
                            let local = tags::local_tags(name)?;
                            let newest = tags::newest(local.iter().map(String::as_str))
                                .ok_or_else(|| Error::ParentMissing {
                                    image: of.to_string(),
                                    parent: dir.clone(),
                                    what: format!(
                                        "no build of {name} is here (tag=timestamp: it is \
                                         tagged with its build time)"
                                    ),
                                })?;
                            format!("{name}:{newest}")
                        }
                        None => {
                            let resolved = format!("{name}:{own}");
                            require(&resolved, dir);
                            resolved
                        }
                    };
                    return Ok(Some(resolved));
                }
                // Written with the tag the project gives it: it must be here as well,
                // unless this run builds it so.
                if !timestamped && tag == format!(":{own}") && run_tag != Some(&own) {
                    require(reference, dir);
                }
                Ok(None)
            },
        )?;
        Ok(Resolved {
            dockerfile,
            rewritten,
            checks,
        })
    }
}

/// The project's images by name (`<project>-<dir>`, or as the section names it): their
/// subdirectories. A reference names a project image when its name part is one of these.
fn images_by_name(project: &Project, dirs: &[String]) -> Result<HashMap<String, String>> {
    let mut names = HashMap::new();
    for d in dirs {
        names.insert(project.image_ref(d)?.name, d.clone());
    }
    Ok(names)
}

/// The docker builds of a plan read this Dockerfile text on stdin (`-f -`).
fn read_dockerfile_from_stdin(plan: &mut Plan, dockerfile: &str) {
    for step in &mut plan.steps {
        if let Step::Run(inv) = step
            && inv.is_docker
            && inv.args.first().is_some_and(|a| a.value == "build")
            && let Some(i) = inv.args.iter().position(|a| a.value == "-f")
        {
            inv.args[i + 1] = "-".into();
            inv.stdin = Some(dockerfile.to_string().into());
        }
    }
}

/// One image's build: its steps, and what `--if-changed` and the scheduler need.
#[derive(Debug, Clone)]
pub(crate) struct ImagePart {
    pub target: String,
    pub image: ImageRef,
    /// The project images it is built from (subdirectories), built before it.
    pub parents: Vec<String>,
    pub plan: Plan,
    /// For the input digest: the Dockerfile's text, its build args, the images it is
    /// built from, the context files it copies.
    pub dockerfile: String,
    pub build_args: Vec<String>,
    pub bases: Vec<String>,
    pub sources: Vec<String>,
    /// The build context (the project root, or auto-build's export of a branch).
    pub context: std::path::PathBuf,
}

/// A build-image run: steps before (version file, pip.conf), the images in build order,
/// and the cleanup.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parts {
    pub before: Vec<Step>,
    pub images: Vec<ImagePart>,
    pub cleanup: Vec<Step>,
}

impl Parts {
    /// The whole run as one sequential plan: what `--dry-run` prints, `clean` runs and
    /// run-notebook runs before the notebook.
    pub(crate) fn into_plan(self) -> Plan {
        let mut plan = Plan {
            steps: self.before,
            cleanup: self.cleanup,
        };
        for part in self.images {
            plan.steps.extend(part.plan.steps);
            plan.cleanup.extend(part.plan.cleanup);
        }
        plan
    }
}

/// The build args of an image's section, split into words, `{version}` replaced.
fn section_build_args(project: &Project, target: &str) -> Result<Vec<String>> {
    let cfg = &project.cfg;
    let mut build_args = if cfg.has_section(target) {
        cfg.get_words(target, keys::BUILD_ARGS)?.unwrap_or_default()
    } else {
        vec![]
    };
    // `{version}`: the project's `git describe`, sealed into the image by a build arg.
    if build_args.iter().any(|w| w.contains("{version}")) {
        let version = project.version();
        for word in &mut build_args {
            *word = word.replace("{version}", &version);
        }
    }
    Ok(build_args)
}

/// For each image directory: the project images its Dockerfile builds from.
pub(crate) fn project_parents(
    project: &Project,
    dirs: &[String],
) -> Result<HashMap<String, Vec<String>>> {
    let names = images_by_name(project, dirs)?;
    let mut parents = HashMap::new();
    for d in dirs {
        let Ok(text) = std::fs::read_to_string(project.dockerfile(d)) else {
            continue;
        };
        let args = chain::build_arg_values(&section_build_args(project, d)?);
        let mut mine: Vec<String> = vec![];
        for base in chain::parse(&text, &args).bases {
            if let Some(p) = names.get(chain::reference_name(&base))
                && p != d
                && !mine.contains(p)
            {
                mine.push(p.clone());
            }
        }
        parents.insert(d.clone(), mine);
    }
    Ok(parents)
}

enum Action {
    Build,
    Clean,
}

pub(crate) fn plan(project: &Project, args: &Request, ctx: &Context) -> Result<Plan> {
    Ok(parts(project, args, ctx)?.into_plan())
}

pub(crate) fn parts(project: &Project, args: &Request, _ctx: &Context) -> Result<Parts> {
    parts_in(project, args, &tags::utc_stamp(), &mut |_| {
        Ok(project.root.clone())
    })
}

/// As `parts`, with `stamp` the time that tags this run's `tag=timestamp` images, and each
/// image built in the context `context_of` gives it (the project root, or auto-build's
/// export of a branch), from that context's Dockerfile.
pub(crate) fn parts_in(
    project: &Project,
    args: &Request,
    stamp: &str,
    context_of: &mut dyn FnMut(&str) -> Result<PathBuf>,
) -> Result<Parts> {
    let dirs = project.image_dirs()?;
    let mut valid = vec!["all".to_string(), "clean".to_string()];
    valid.extend(dirs.iter().cloned());
    Project::check_image(&args.image, &valid)?;
    let parents = project_parents(project, &dirs)?;

    let (action, targets, explicit) = match args.image.as_str() {
        "all" => (Action::Build, chain::order(&dirs, &parents)?, false),
        "clean" => (Action::Clean, dirs.clone(), false),
        image => {
            let mut targets = vec![];
            if args.force_build_base && image != "base" && dirs.iter().any(|d| d == "base") {
                targets.push("base".to_string());
            }
            if args.with_deps {
                chain::order(&dirs, &parents)?;
                for t in chain::with_ancestors(image, &parents) {
                    if !targets.contains(&t) {
                        targets.push(t);
                    }
                }
            } else {
                targets.push(image.to_string());
            }
            (Action::Build, targets, true)
        }
    };
    if args.image_name.is_some() && !explicit {
        return Err(Error::Usage(format!(
            "-i/--image_name names one image; it cannot be used with `{}`",
            args.image
        )));
    }

    // -f builds base first: the other images of the run wait for it, and are not tried
    // when it fails, as for an image they are built from.
    let mut parents = parents;
    if args.force_build_base && explicit && targets.iter().any(|t| t == "base") {
        for t in targets.iter().filter(|t| *t != "base") {
            let mine = parents.entry(t.clone()).or_default();
            if !mine.iter().any(|p| p == "base") {
                mine.insert(0, "base".to_string());
            }
        }
    }

    let mut global = Plan::default();
    let root = &project.root;
    if matches!(action, Action::Build) {
        version_file_step(project, &mut global)?;
        pip_conf_steps(project, &mut global);
    }
    let mut out = Parts {
        before: global.steps,
        images: vec![],
        cleanup: global.cleanup,
    };
    // The tag this run gives each image it builds (one time for every timestamp-tagged
    // image of the run: a chain shares it), for the FROMs that name them.
    let mut in_run = HashMap::new();
    for t in targets.iter().filter(|t| project.dockerfile(t).is_file()) {
        let tag = match &args.image_tag {
            Some(tag) => tag.clone(),
            None => project.image_ref(t)?.tag,
        };
        let tag = if tag == tags::TIMESTAMP {
            stamp.to_string()
        } else {
            tag
        };
        in_run.insert(t.clone(), tag);
    }
    let froms = Froms {
        project,
        by_name: images_by_name(project, &dirs)?,
        in_run,
    };
    for target in &targets {
        let mut plan = Plan::default();
        if !explicit && !project.dockerfile(target).is_file() {
            out.before.push(Step::Say(format!(
                "skipping docker/{target}: it has no Dockerfile"
            )));
            continue;
        }
        let context = match action {
            Action::Build => context_of(target)?,
            Action::Clean => root.clone(),
        };
        let path = context.join("docker").join(target).join("Dockerfile");
        let dockerfile = std::fs::read_to_string(&path).map_err(|_| Error::NoDockerfile {
            image: target.clone(),
            path: path.clone(),
        })?;
        let mut image = project.image_ref(target)?;
        if target == &args.image
            && let Some(name) = &args.image_name
        {
            image.name = name.clone();
        }
        if let Some(tag) = &args.image_tag {
            image.tag = tag.clone();
        }
        let timestamped = image.tag == tags::TIMESTAMP;
        if timestamped && matches!(action, Action::Clean) {
            // Every timestamp tag of the image goes.
            for tag in tags::local_tags(&image.name)? {
                let mut rmi = engine::docker(root).args(["rmi", &format!("{}:{tag}", image.name)]);
                rmi.on_failure = OnFailure::MissingImageIsFine;
                plan.run(rmi);
            }
            out.images.push(ImagePart {
                target: target.clone(),
                image,
                parents: vec![],
                plan,
                dockerfile,
                build_args: vec![],
                bases: vec![],
                sources: vec![],
                context: project.root.clone(),
            });
            continue;
        }
        if timestamped {
            image.tag = stamp.to_string();
        }
        let build_args = section_build_args(project, target)?;
        let Resolved {
            dockerfile,
            rewritten,
            checks,
        } = match action {
            Action::Build => froms.resolve(target, &dockerfile, &build_args)?,
            Action::Clean => Resolved {
                dockerfile,
                rewritten: false,
                checks: vec![],
            },
        };
        plan.steps.extend(checks);
        let builder = engine::has_builder_stage(&dockerfile).then(|| ImageRef {
            name: format!("{}-builder", image.name),
            tag: image.tag.clone(),
        });
        match action {
            Action::Clean => {
                for img in std::iter::once(&image).chain(builder.as_ref()) {
                    let mut rmi = engine::docker(root).args(["rmi", &img.to_string()]);
                    rmi.on_failure = OnFailure::MissingImageIsFine;
                    plan.run(rmi);
                }
            }
            Action::Build => {
                build_steps(
                    project,
                    args,
                    target,
                    &image,
                    builder.as_ref(),
                    &context,
                    &mut plan,
                )?;
                if rewritten {
                    read_dockerfile_from_stdin(&mut plan, &dockerfile);
                }
            }
        }
        let parsed = chain::parse(&dockerfile, &chain::build_arg_values(&build_args));
        out.images.push(ImagePart {
            target: target.clone(),
            image,
            parents: parents.get(target).cloned().unwrap_or_default(),
            plan,
            dockerfile,
            build_args,
            bases: parsed.bases,
            sources: parsed.sources,
            context,
        });
    }
    Ok(out)
}

fn section_value(cfg: &Cfg, section: &str, key: &str) -> Result<Option<String>> {
    if cfg.has_section(section) {
        cfg.get(section, key)
    } else {
        Ok(None)
    }
}

fn build_steps(
    project: &Project,
    args: &Request,
    target: &str,
    image: &ImageRef,
    builder: Option<&ImageRef>,
    context: &std::path::Path,
    plan: &mut Plan,
) -> Result<()> {
    let cfg = &project.cfg;
    let force_pull = args.force_build_base
        && cfg.has_section(target)
        && cfg
            .get_bool(target, keys::PULL_FROM_ON_FORCE)?
            .unwrap_or(false);
    let pull = args.pull_base || force_pull;
    let build_args = section_build_args(project, target)?;
    let dockerfile = Project::dockerfile_arg(target);

    if let Some(script) = section_value(cfg, target, keys::PRE_BUILD_SCRIPT)? {
        plan.run(shell_script(context, &script, "Running pre-build-script"));
    }
    if let Some(builder) = builder {
        let b = builder.to_string();
        plan.run(engine::build(
            context,
            &b,
            &dockerfile,
            Some("builder"),
            pull,
            &build_args,
        ));
    }
    plan.run(engine::build(
        context,
        &image.to_string(),
        &dockerfile,
        None,
        pull,
        &build_args,
    ));
    if let Some(script) = section_value(cfg, target, keys::POST_BUILD_SCRIPT)? {
        plan.run(shell_script(context, &script, "Running post-build-script"));
    }
    Ok(())
}

/// `pre_build_script`/`post_build_script` are documented as shell commands: `sh -c`.
fn shell_script(root: &std::path::Path, script: &str, note: &str) -> Invocation {
    let mut inv = Invocation::new("sh", root.to_owned()).args(["-c", script]);
    inv.note = Some(format!("{note}: {script}"));
    inv
}

/// `pip.conf.template` at the root becomes `pip.conf` for the build, unless one exists.
fn pip_conf_steps(project: &Project, plan: &mut Plan) {
    let template = project.root.join("pip.conf.template");
    let conf = project.root.join("pip.conf");
    if template.is_file() && !conf.exists() {
        plan.steps.push(Step::Copy {
            from: template,
            to: conf.clone(),
        });
        plan.cleanup.push(Step::Remove { path: conf });
    }
}

/// Projects versioned with versioneer (`[versioneer]` in setup.cfg, `versioneer.py` at the
/// root) get `_version.py.bld`, written by versioneer itself as 2.0.7 does.
pub(crate) fn version_file_step(project: &Project, plan: &mut Plan) -> Result<()> {
    let setup_cfg = project.root.join("setup.cfg");
    if !setup_cfg.is_file() || !project.root.join("versioneer.py").is_file() {
        return Ok(());
    }
    if !Cfg::load(&setup_cfg)?.has_section("versioneer") {
        return Ok(());
    }
    let mut inv = Invocation::new("python3", project.root.clone()).args([
        "-c",
        GEN_VERSION_PY,
        "_version.py.bld",
    ]);
    inv.note = Some("Writing _version.py.bld with versioneer".into());
    plan.run(inv);
    Ok(())
}

/// dockerutils 2.0.7's `gen_version_file`, verbatim in what it writes.
const GEN_VERSION_PY: &str = r#"import json, sys
sys.path.insert(0, '.')
import versioneer
version = versioneer.get_versions()
with open(sys.argv[1], 'w') as f:
    f.write("""
# This file was generated by build-image invoking versioneer.py. It is generated
# from revision-control system data and simulates the pre-generated copy of this
# file produced by Versioneer for distribution tarballs.

import json

version_json = '''
{}
'''  # END VERSION_JSON


def get_versions():
    return json.loads(version_json)

""".format(json.dumps(version, sort_keys=True, indent=4, separators=(',', ': '))))
"#;

/// What became of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Built,
    UpToDate,
    Failed(i32),
    /// Not tried: an image it is built from failed.
    Blocked(String),
    /// Not tried: the run was interrupted (Ctrl-C, SIGTERM) before its turn.
    Interrupted,
    /// Its build was cut off by the interruption.
    Cut,
}

/// The current input digest of an image's build (parents as they are in the engine now).
pub(crate) fn inputs_digest(project: &Project, part: &ImagePart) -> Result<String> {
    let mut base_ids = vec![];
    for base in &part.bases {
        let id = engine::inspect_image(base, "{{.Id}}")?.unwrap_or_else(|| "missing".into());
        base_ids.push((base.clone(), id));
    }
    let ignore = chain::Ignore::load(&part.context);
    let files = chain::context_files(&part.context, &part.sources, &ignore);
    let mut args = part.build_args.clone();
    // The scripts around the build are inputs too (they may write what it copies).
    for key in [keys::PRE_BUILD_SCRIPT, keys::POST_BUILD_SCRIPT] {
        if let Some(script) = section_value(&project.cfg, &part.target, key)? {
            args.push(format!("{key}={script}"));
        }
    }
    chain::inputs_digest(&part.context, &part.dockerfile, &args, &base_ids, &files)
        .map_err(|e| Error::io(format!("reading the inputs of {}", part.target), e))
}

/// The plan of one image with its input digest as a label on what it builds.
fn labelled(part: &ImagePart, digest: &str) -> Plan {
    let mut plan = part.plan.clone();
    for step in &mut plan.steps {
        if let Step::Run(inv) = step
            && inv.is_docker
            && inv.args.first().is_some_and(|a| a.value == "build")
        {
            let at = inv.args.len().saturating_sub(1);
            inv.args.insert(at, "--label".into());
            inv.args
                .insert(at + 1, format!("{}={digest}", chain::INPUTS_LABEL).into());
        }
    }
    plan
}

/// Is the image there with this input digest?
fn up_to_date(part: &ImagePart, digest: &str) -> Result<bool> {
    let format = format!("{{{{index .Config.Labels \"{}\"}}}}", chain::INPUTS_LABEL);
    Ok(engine::inspect_image(&part.image.to_string(), &format)?.as_deref() == Some(digest))
}

fn build_one(project: &Project, part: &ImagePart, if_changed: bool) -> Outcome {
    // A build that ends badly once the run is interrupted was cut off, whatever its
    // docker said: reported so, not as a failure of the image.
    let ended = |rc| match rc {
        0 => Outcome::Built,
        _ if crate::process::interrupted() => Outcome::Cut,
        rc => Outcome::Failed(rc),
    };
    if !if_changed {
        return ended(crate::exec::execute("build-image", &part.plan));
    }
    let digest = match inputs_digest(project, part) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(crate::error::fail("build-image", &e)),
    };
    match up_to_date(part, &digest) {
        Ok(true) => {
            eprintln!(
                "{} is up to date: its inputs have not changed ({})",
                part.image,
                &digest[..19]
            );
            Outcome::UpToDate
        }
        Err(e) => Outcome::Failed(crate::error::fail("build-image", &e)),
        Ok(false) => ended(crate::exec::execute(
            "build-image",
            &labelled(part, &digest),
        )),
    }
}

/// Runs the build (every mode of build-image but `clean` and `--dry-run`, and auto-build):
/// the images in dependency order, up to `jobs` at once. An image waits for the images of
/// this run it is built from, and is not tried when one of them failed; the others go on.
/// An interrupted run (Ctrl-C, SIGTERM) starts no further image. With more than one image,
/// one summary line. Returns the exit code (the first failure's; 130 when interrupted
/// before any failed), and what became of each image (in `parts.images` order; `None`
/// when the steps before the images failed).
pub(crate) fn schedule(
    project: &Project,
    parts: Parts,
    jobs: usize,
    if_changed: bool,
) -> (i32, Vec<Option<Outcome>>) {
    let before = Plan {
        steps: parts.before,
        cleanup: vec![],
    };
    let cleanup = Plan {
        steps: vec![],
        cleanup: parts.cleanup,
    };
    let rc = crate::exec::execute("build-image", &before);
    if rc != 0 {
        crate::exec::execute("build-image", &cleanup);
        return (rc, vec![None; parts.images.len()]);
    }
    let images = &parts.images;
    let in_run = |t: &String| images.iter().any(|p| &p.target == t);
    let mut outcome: Vec<Option<Outcome>> = vec![None; images.len()];
    let mut started = vec![false; images.len()];
    // One image (the daily `build-image dev`): built on this thread. A thread of its own
    // would only add its start to the command's (BENCHMARKS.md, "Start-up").
    if let [part] = &images[..]
        && !crate::process::interrupted()
    {
        outcome[0] = Some(build_one(project, part, if_changed));
        started[0] = true;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        let mut running = 0;
        loop {
            for i in 0..images.len() {
                if started[i] || running >= jobs.max(1) {
                    continue;
                }
                let part = &images[i];
                if crate::process::interrupted() {
                    started[i] = true;
                    outcome[i] = Some(Outcome::Interrupted);
                    continue;
                }
                let parent_state = |p: &String| {
                    images
                        .iter()
                        .position(|x| &x.target == p)
                        .and_then(|j| outcome[j].clone())
                };
                if let Some(failed) = part.parents.iter().filter(|p| in_run(p)).find(|p| {
                    matches!(
                        parent_state(p),
                        Some(Outcome::Failed(_) | Outcome::Blocked(_))
                    )
                }) {
                    started[i] = true;
                    eprintln!("{}: not built, because {failed} failed", part.image);
                    outcome[i] = Some(Outcome::Blocked(failed.clone()));
                    continue;
                }
                let ready =
                    part.parents.iter().filter(|p| in_run(p)).all(|p| {
                        matches!(parent_state(p), Some(Outcome::Built | Outcome::UpToDate))
                    });
                if ready {
                    started[i] = true;
                    running += 1;
                    let tx = tx.clone();
                    scope.spawn(move || {
                        let _ = tx.send((i, build_one(project, part, if_changed)));
                    });
                }
            }
            if running == 0 {
                break;
            }
            let (i, result) = rx.recv().expect("a build thread reports");
            running -= 1;
            outcome[i] = Some(result);
        }
    });
    let rc_cleanup = crate::exec::execute("build-image", &cleanup);
    let targets = |want: fn(&Outcome) -> bool| -> Vec<&str> {
        images
            .iter()
            .zip(&outcome)
            .filter(|(_, o)| o.as_ref().is_some_and(want))
            .map(|(p, _)| p.target.as_str())
            .collect()
    };
    let built = targets(|o| *o == Outcome::Built);
    let up_to_date = targets(|o| *o == Outcome::UpToDate);
    let failed = targets(|o| matches!(o, Outcome::Failed(_)));
    let skipped = targets(|o| matches!(o, Outcome::Blocked(_)));
    let not_started = targets(|o| *o == Outcome::Interrupted);
    let cut = targets(|o| *o == Outcome::Cut);
    if images.len() > 1 {
        let listed = |names: &[&str]| match names {
            [] => String::new(),
            names => format!(" ({})", names.join(", ")),
        };
        let mut line = format!(
            "build-image: {} built, {} up to date, {} failed{}",
            built.len(),
            up_to_date.len(),
            failed.len(),
            listed(&failed)
        );
        if !skipped.is_empty() {
            line += &format!(", {} skipped{}", skipped.len(), listed(&skipped));
        }
        if !cut.is_empty() {
            line += &format!(", {} interrupted{}", cut.len(), listed(&cut));
        }
        if !not_started.is_empty() {
            line += &format!(
                ", {} not started (interrupted){}",
                not_started.len(),
                listed(&not_started)
            );
        }
        eprintln!("{line}");
    }
    let first_failure = outcome.iter().flatten().find_map(|o| match o {
        Outcome::Failed(rc) => Some(*rc),
        _ => None,
    });
    // Interrupted, the exit code says so (128 + the signal), as a shell would of a
    // command it stopped, whatever had failed before: the summary line tells the rest.
    let rc = match first_failure {
        _ if crate::process::interrupted() => crate::process::interrupted_code(),
        Some(rc) => rc,
        None if !skipped.is_empty() => 1,
        None if !not_started.is_empty() || !cut.is_empty() => crate::exec::INTERRUPTED,
        None => rc_cleanup,
    };
    (rc, outcome)
}

/// `--dry-run --if-changed`: which images would be skipped, and the rest of the plan.
pub(crate) fn dry_run_if_changed(project: &Project, parts: Parts) -> Result<String> {
    let mut out = Plan {
        steps: parts.before,
        cleanup: parts.cleanup,
    };
    let mut rebuilt: Vec<&str> = vec![];
    for part in &parts.images {
        // A parent this run rebuilds gives it new inputs: it is rebuilt too.
        let digest = if part.parents.iter().any(|p| rebuilt.contains(&p.as_str())) {
            "<computed once its parents are built>".to_string()
        } else {
            let digest = inputs_digest(project, part)?;
            if up_to_date(part, &digest)? {
                out.steps.push(Step::Say(format!(
                    "{} is up to date: its inputs have not changed",
                    part.image
                )));
                continue;
            }
            digest
        };
        rebuilt.push(&part.target);
        let plan = labelled(part, &digest);
        out.steps.extend(plan.steps);
        out.cleanup.extend(plan.cleanup);
    }
    Ok(out.script())
}
