//! `build-image IMAGE|all|clean`: build (or remove) the project's images.

use crate::cfg::Cfg;
use crate::context::Context;
use crate::docker;
use crate::error::{Error, Result};
use crate::plan::{Invocation, OnFailure, Plan, Step};
use crate::project::{ImageRef, Project};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "build-image",
    version,
    about = "Build a project image from docker/<IMAGE>/Dockerfile, named <project>-<IMAGE>:<user>",
    long_about = "Build a project image from docker/<IMAGE>/Dockerfile, named <project>-<IMAGE>:<user> \
        (or as its dockerutils.cfg section says). The build context is the project root. \
        `all` builds every image (base first); `clean` removes the project's images.",
    after_help = "Examples:\n  build-image dev\n  build-image dev -f        # build docker/base first\n  build-image all -t v1.2\n  build-image clean\n  build-image dev --dry-run # print the docker commands only"
)]
pub struct Args {
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
    /// Print the commands that would run, and run nothing
    #[arg(long)]
    pub dry_run: bool,
}

enum Action {
    Build,
    Clean,
}

pub fn plan(project: &Project, args: &Args, _ctx: &Context) -> Result<Plan> {
    let dirs = project.image_dirs()?;
    let mut valid = vec!["all".to_string(), "clean".to_string()];
    valid.extend(dirs.iter().cloned());
    Project::check_image(&args.image, &valid)?;

    let (action, targets, explicit) = match args.image.as_str() {
        "all" => (Action::Build, dirs.clone(), false),
        "clean" => (Action::Clean, dirs.clone(), false),
        image => {
            let mut targets = vec![];
            if args.force_build_base && image != "base" && dirs.iter().any(|d| d == "base") {
                targets.push("base".to_string());
            }
            targets.push(image.to_string());
            (Action::Build, targets, true)
        }
    };
    if args.image_name.is_some() && !explicit {
        return Err(Error::Usage(format!(
            "-i/--image_name names one image; it cannot be used with `{}`",
            args.image
        )));
    }

    let mut plan = Plan::default();
    let root = &project.root;
    if matches!(action, Action::Build) {
        version_file_step(project, &mut plan)?;
        pip_conf_steps(project, &mut plan);
    }
    for target in &targets {
        let path = project.dockerfile(target);
        let dockerfile = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(_) if !explicit => {
                plan.steps.push(Step::Say(format!(
                    "skipping docker/{target}: it has no Dockerfile"
                )));
                continue;
            }
            Err(_) => {
                return Err(Error::NoDockerfile {
                    image: target.clone(),
                    path,
                });
            }
        };
        let mut image = project.image_ref(target)?;
        if target == &args.image {
            if let Some(name) = &args.image_name {
                image.name = name.clone();
            }
        }
        if let Some(tag) = &args.image_tag {
            image.tag = tag.clone();
        }
        let builder = docker::has_builder_stage(&dockerfile).then(|| ImageRef {
            name: format!("{}-builder", image.name),
            tag: image.tag.clone(),
        });
        match action {
            Action::Clean => {
                for img in std::iter::once(&image).chain(builder.as_ref()) {
                    let mut rmi = docker::docker(root).args(["rmi", &img.to_string()]);
                    rmi.on_failure = OnFailure::MissingImageIsFine;
                    plan.run(rmi);
                }
            }
            Action::Build => {
                build_steps(project, args, target, &image, builder.as_ref(), &mut plan)?
            }
        }
    }
    Ok(plan)
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
    args: &Args,
    target: &str,
    image: &ImageRef,
    builder: Option<&ImageRef>,
    plan: &mut Plan,
) -> Result<()> {
    let cfg = &project.cfg;
    let root = &project.root;
    let force_pull = args.force_build_base
        && cfg.has_section(target)
        && cfg.get_bool(target, "pull_FROM_on_force")?.unwrap_or(false);
    let pull = args.pull_base || force_pull;
    let mut build_args = if cfg.has_section(target) {
        cfg.get_words(target, "build_args")?.unwrap_or_default()
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
    let dockerfile = Project::dockerfile_arg(target);

    if let Some(script) = section_value(cfg, target, "pre_build_script")? {
        plan.run(shell_script(root, &script, "Running pre-build-script"));
    }
    if let Some(builder) = builder {
        let b = builder.to_string();
        plan.run(docker::build(
            root,
            &b,
            &dockerfile,
            Some("builder"),
            pull,
            &build_args,
        ));
    }
    plan.run(docker::build(
        root,
        &image.to_string(),
        &dockerfile,
        None,
        pull,
        &build_args,
    ));
    if let Some(script) = section_value(cfg, target, "post_build_script")? {
        plan.run(shell_script(root, &script, "Running post-build-script"));
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
pub fn version_file_step(project: &Project, plan: &mut Plan) -> Result<()> {
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

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    let ctx = Context::from_process();
    let planned = Project::discover_here(&ctx.user).and_then(|p| plan(&p, &args, &ctx));
    super::finish("build-image", args.dry_run, planned)
}
