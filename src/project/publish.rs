//! Publishing a project image: tag it with its section's `publication_tag` and push it: to ECR (`image_repo=aws`, logging in with a token from the API) or to any
//! registry (`image_repo=docker_hub` or `registry`, login left to docker's credential store).

use crate::aws::{Aws, AwsArgs, ecr};
use crate::context::Context;
use crate::engine;
use crate::engine::tags;
use crate::error::{Error, Result};
use crate::plan::{Arg, Plan, Step};
use crate::project::Project;
use crate::project::cfg::keys;
use crate::project::expand;

/// What to publish: the flags of `publish-image` (auto-build --publish makes one too).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Request {
    /// Image to publish: a subdirectory of docker/ or a synthetic image of the cfg
    pub image: String,
    /// Publish this local image name rather than the project's
    #[arg(short = 'i', long = "image_name", visible_alias = "image-name")]
    pub image_name: Option<String>,
    /// Print what would run (ECR: no repository is created), change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

pub(crate) const REPOS: [&str; 3] = ["aws", "docker_hub", "registry"];

/// Where an image goes, from its cfg section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub repo: String,
    /// `publication_tag` before expansion.
    pub template: String,
    /// The local `name:tag` to publish.
    pub source: String,
    pub name: String,
    pub tag: String,
}

pub(crate) fn target(project: &Project, args: &Request) -> Result<Target> {
    let mut t = target_unresolved(project, args)?;
    if t.tag == tags::TIMESTAMP {
        // `tag=timestamp`: the newest build here.
        t.tag = tags::newest(tags::local_tags(&t.name)?.iter().map(String::as_str)).ok_or_else(
            || Error::NoImage {
                image: format!("{} (with a timestamp tag)", t.name),
            },
        )?;
        t.source = format!("{}:{}", t.name, t.tag);
    }
    Ok(t)
}

/// The target as the cfg says it (`tag=timestamp` left as it is).
fn target_unresolved(project: &Project, args: &Request) -> Result<Target> {
    let mut valid = project.image_dirs()?;
    valid.extend(project.synthetic_images()?);
    Project::check_image(&args.image, &valid)?;
    let cfg = &project.cfg;
    let get = |key: &str| -> Result<Option<String>> {
        if cfg.has_section(&args.image) {
            cfg.get(&args.image, key)
        } else {
            Ok(None)
        }
    };
    let image = project.image_ref(&args.image)?;
    let name = args.image_name.clone().unwrap_or(image.name);
    let repo = get(keys::IMAGE_REPO)?.unwrap_or_default();
    if !REPOS.contains(&repo.as_str()) {
        let found = if repo.is_empty() {
            "no image_repo".to_string()
        } else {
            format!("image_repo={repo}")
        };
        return Err(Error::Usage(format!(
            "[{}] has {found}: publish-image supports image_repo={} in {}",
            args.image,
            REPOS.join(", image_repo="),
            cfg.path().display()
        )));
    }
    let template = get(keys::PUBLICATION_TAG)?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::Usage(format!(
                "[{}] has no publication_tag in {}: e.g. \
             publication_tag={{account}}.dkr.ecr.{{region}}.amazonaws.com/{{image}}:{{tag}}",
                args.image,
                cfg.path().display()
            ))
        })?;
    Ok(Target {
        source: format!("{name}:{}", image.tag),
        repo,
        template,
        name,
        tag: image.tag,
    })
}

/// `publication_tag` with `{account}`, `{region}`, `{image}`, `{tag}`, `{user}` and
/// `$VAR`s replaced.
pub(crate) fn expand_tag(t: &Target, account: &str, region: &str, ctx: &Context) -> Result<String> {
    let vars = [
        ("account", account),
        ("region", region),
        ("image", t.name.as_str()),
        ("tag", t.tag.as_str()),
        ("user", ctx.user.as_str()),
    ];
    let bad = |m: String| Error::Usage(format!("publication_tag `{}`: {m}", t.template));
    let formatted = expand::format_vars(&t.template, &vars).map_err(bad)?;
    ctx.expand_env(&formatted).map_err(bad)
}

/// How `run-image --latest` finds the newest published tag ([`newest_published`]'s
/// shape). Set once by the binary's entry point: the full binary sets
/// [`newest_published`]; the daily one (`cli::daily`), which carries neither the AWS SDK
/// nor an HTTP client, sets a function that hands the whole run to the full binary. Only
/// a function stored here at run time keeps that code out of the daily binary's link.
pub(crate) type Lookup = fn(&Project, &str, &Context, &AwsArgs) -> Result<Option<(String, String)>>;

static LOOKUP: std::sync::OnceLock<Lookup> = std::sync::OnceLock::new();

/// Sets how the newest published tag is found (the first call wins).
pub(crate) fn set_lookup(lookup: Lookup) {
    let _ = LOOKUP.set(lookup);
}

/// The newest published tag, found as the entry point said.
pub(crate) fn newest_published_tag(
    project: &Project,
    image: &str,
    ctx: &Context,
    aws_args: &AwsArgs,
) -> Result<Option<(String, String)>> {
    // The library's own tests have no entry point.
    #[cfg(test)]
    let lookup = LOOKUP.get().copied().unwrap_or(newest_published);
    #[cfg(not(test))]
    let lookup = *LOOKUP
        .get()
        .expect("the entry point sets the registry lookup");
    lookup(project, image, ctx, aws_args)
}

/// The newest timestamp tag of an image type in the registry it is published to (its
/// section's `image_repo` and `publication_tag`), with the reference to pull it by.
pub(crate) fn newest_published(
    project: &Project,
    image: &str,
    ctx: &Context,
    aws_args: &AwsArgs,
) -> Result<Option<(String, String)>> {
    let args = Request {
        image: image.into(),
        image_name: None,
        dry_run: true,
        aws: aws_args.clone(),
    };
    let mut t = target_unresolved(project, &args).map_err(|e| match e {
        Error::Usage(m) => Error::Usage(format!(
            "the newest build is looked for where [{image}] is published, and {m}"
        )),
        e => e,
    })?;
    let (repository, found) = if t.repo == "aws" {
        let aws = Aws::load(aws_args)?;
        let account = if t.template.contains("{account}") {
            ecr::account(&aws)?
        } else {
            String::new()
        };
        t.tag = "x".into();
        let reference = expand_tag(&t, &account, &aws.region(), ctx)?;
        let (host, path) = split_reference(&reference);
        let repository = match host {
            Some(h) => format!("{h}/{path}"),
            None => path.to_string(),
        };
        let found = tags::ecr_tags(&aws, path)?;
        (repository, found)
    } else {
        t.tag = "x".into();
        let reference = expand_tag(&t, "", "", ctx)?;
        let (host, path) = split_reference(&reference);
        let repository = match host {
            Some(h) => format!("{h}/{path}"),
            None => format!("registry-1.docker.io/{path}"),
        };
        let found = tags::registry_tags(&repository)?;
        let repository = match host {
            Some(_) => repository,
            None => path.to_string(),
        };
        (repository, found)
    };
    Ok(tags::newest(found.iter().map(String::as_str)).map(|tag| {
        let pull = format!("{repository}:{tag}");
        (tag, pull)
    }))
}

/// The registry host of an image reference (docker's rule: a first component with a
/// `.` or `:`, or `localhost`), and the repository path.
pub(crate) fn split_reference(reference: &str) -> (Option<&str>, &str) {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let path = match without_digest.rfind(':') {
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    };
    match path.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (Some(first), rest)
        }
        _ => (None, path),
    }
}

/// With `image_repo=aws` the push must go to the registry ECR's token is for: the token
/// is a password to the account's images, and a `publication_tag` on any other host
/// (a typo, a copied cfg, a hostile one) would hand it to that host's `docker login`.
fn check_ecr_host(section: &str, tag: &str, registry: &str) -> Result<()> {
    let host = split_reference(tag).0;
    if host.is_some_and(|h| h.eq_ignore_ascii_case(registry)) {
        return Ok(());
    }
    let goes_to = host.map_or("Docker Hub".to_string(), |h| format!("`{h}`"));
    Err(Error::Usage(format!(
        "[{}] publication_tag `{tag}` pushes to {goes_to}, but with image_repo=aws the ECR \
         login is for `{registry}` only, so nothing was sent: name that registry \
         (publication_tag={{account}}.dkr.ecr.{{region}}.amazonaws.com/{{image}}:{{tag}}), or \
         use image_repo=registry for another registry (docker's own login)",
        section
    )))
}

/// The docker steps: login (ECR only; the password goes on stdin), tag, push.
pub(crate) fn plan(project: &Project, t: &Target, tag: &str, login: Option<&ecr::Login>) -> Plan {
    let mut plan = Plan::default();
    if let Some(login) = login {
        // Only ever to ECR's own registry: `publish` refuses a tag on another host.
        let server = login.registry().to_string();
        let mut inv = engine::docker(&project.root)
            .args(["login", "--username", &login.user, "--password-stdin"])
            .arg(server);
        inv.stdin = Some(Arg {
            value: login.password.clone(),
            secret: true,
        });
        plan.run(inv);
    }
    plan.run(engine::docker(&project.root).args(["tag", &t.source, tag]));
    plan.run(engine::docker(&project.root).args(["push", tag]));
    plan
}

/// Publishes one image of the project (also called by auto-build --publish).
pub(crate) fn publish(project: &Project, args: &Request, ctx: &Context) -> Result<i32> {
    let t = target(project, args)?;
    if !engine::image_exists(&t.source)? {
        return Err(Error::NoImage { image: t.source });
    }
    if t.repo != "aws" {
        let tag = expand_tag(&t, "", "", ctx)?;
        let plan = plan(project, &t, &tag, None);
        return Ok(crate::exec::finish("publish-image", args.dry_run, Ok(plan)));
    }
    let aws = Aws::load(&args.aws)?;
    let account = if t.template.contains("{account}") {
        ecr::account(&aws)?
    } else {
        String::new()
    };
    let tag = expand_tag(&t, &account, &aws.region(), ctx)?;
    let login = ecr::login(&aws)?;
    check_ecr_host(&args.image, &tag, login.registry())?;
    let repository = split_reference(&tag).1.to_string();
    let mut plan = plan(project, &t, &tag, Some(&login));
    if args.dry_run {
        plan.steps.insert(
            0,
            Step::Say(format!(
                "ECR: create repository {repository} unless it exists"
            )),
        );
    } else if ecr::ensure_repository(&aws, &repository)? {
        eprintln!("Created ECR repository {repository}");
    }
    Ok(crate::exec::finish("publish-image", args.dry_run, Ok(plan)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_docker_does() {
        assert_eq!(
            split_reference("123.dkr.ecr.us-east-1.amazonaws.com/team/app:v1"),
            (Some("123.dkr.ecr.us-east-1.amazonaws.com"), "team/app")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app:1"),
            (Some("127.0.0.1:5000"), "app")
        );
        assert_eq!(split_reference("localhost/app"), (Some("localhost"), "app"));
        assert_eq!(split_reference("myorg/app:latest"), (None, "myorg/app"));
        assert_eq!(split_reference("app@sha256:abc"), (None, "app"));
    }
}
