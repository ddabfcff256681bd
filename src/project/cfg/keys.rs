//! Every key dockerutils reads from `docker/dockerutils.cfg`, in one list: the code reads
//! keys by these constants (a misspelt constant does not compile), and the cfg's own keys
//! are checked against the list (`misspelt`), so that a user's `volume=` is reported
//! instead of silently ignored.

/// `[run_image]`: run-image's own settings.
pub(crate) const RUN_IMAGE: &str = "run_image";
/// `[build_image]`: build-image's own settings.
pub(crate) const BUILD_IMAGE: &str = "build_image";
/// `[serve_hooks]`: serve-hooks' settings.
pub(crate) const SERVE_HOOKS: &str = "serve_hooks";
/// `[run_notebook]`: run-notebook's default images.
pub(crate) const RUN_NOTEBOOK: &str = "run_notebook";

// [run_image]
pub(crate) const SYNTHETIC_IMAGES: &str = "synthetic_images";
// [build_image]
pub(crate) const IF_CHANGED: &str = "if_changed";
// [serve_hooks]
pub(crate) const API_KEY: &str = "api_key";
pub(crate) const IMAGES: &str = "images";
// [run_notebook]
pub(crate) const IMAGE: &str = "image";
pub(crate) const GPU_IMAGE: &str = "gpu_image";

// An image's section: what it is called…
pub(crate) const NAME: &str = "name";
pub(crate) const PREFIX: &str = "prefix";
pub(crate) const TAG: &str = "tag";
// …how it is built…
pub(crate) const BUILD_ARGS: &str = "build_args";
pub(crate) const PULL_FROM_ON_FORCE: &str = "pull_FROM_on_force";
pub(crate) const PRE_BUILD_SCRIPT: &str = "pre_build_script";
pub(crate) const POST_BUILD_SCRIPT: &str = "post_build_script";
pub(crate) const SOURCE_BRANCH: &str = "source_branch";
// …run (these have `_docked` variants)…
pub(crate) const ENVIRONMENT: &str = "environment";
pub(crate) const ENV: &str = "env";
pub(crate) const INTERACTIVE: &str = "interactive";
pub(crate) const GPU: &str = "gpu";
pub(crate) const NETWORK: &str = "network";
pub(crate) const VOLUMES: &str = "volumes";
pub(crate) const PORTS: &str = "ports";
pub(crate) const ARGS: &str = "args";
pub(crate) const CMD: &str = "cmd";
// …run (without)…
pub(crate) const PULL_LATEST: &str = "pull_latest";
pub(crate) const LOG_DIR: &str = "log_dir";
pub(crate) const LOG_MAX_SIZE: &str = "log_max_size";
pub(crate) const LOG_KEEP: &str = "log_keep";
// …published and deployed.
pub(crate) const IMAGE_REPO: &str = "image_repo";
pub(crate) const PUBLICATION_TAG: &str = "publication_tag";
pub(crate) const SERVICE: &str = "service";

/// What `<key>_docked` is when docked (`DOCKER_IP` set): `KEY_docked`.
pub(crate) const DOCKED_SUFFIX: &str = "_docked";

/// The run-image keys read with their `_docked` variant first when docked.
pub(crate) const DOCKED: &[&str] = &[
    ENVIRONMENT,
    ENV,
    INTERACTIVE,
    GPU,
    NETWORK,
    VOLUMES,
    PORTS,
    ARGS,
    CMD,
];

/// The keys of an image's section (`_docked` variants apart).
pub(crate) const IMAGE_SECTION: &[&str] = &[
    NAME,
    PREFIX,
    TAG,
    BUILD_ARGS,
    PULL_FROM_ON_FORCE,
    PRE_BUILD_SCRIPT,
    POST_BUILD_SCRIPT,
    SOURCE_BRANCH,
    ENVIRONMENT,
    ENV,
    INTERACTIVE,
    GPU,
    NETWORK,
    VOLUMES,
    PORTS,
    ARGS,
    CMD,
    PULL_LATEST,
    LOG_DIR,
    LOG_MAX_SIZE,
    LOG_KEEP,
    IMAGE_REPO,
    PUBLICATION_TAG,
    SERVICE,
];

/// The sections of the tools' own settings, and their keys.
pub(crate) const TOOL_SECTIONS: &[(&str, &[&str])] = &[
    (RUN_IMAGE, &[SYNTHETIC_IMAGES]),
    (BUILD_IMAGE, &[IF_CHANGED]),
    (SERVE_HOOKS, &[API_KEY, IMAGES]),
    (RUN_NOTEBOOK, &[IMAGE, GPU_IMAGE]),
];

/// A key of the cfg that dockerutils does not read but that looks like one it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Misspelt {
    pub line: usize,
    pub section: String,
    pub key: String,
    /// The known key it is closest to.
    pub known: String,
}

impl std::fmt::Display for Misspelt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}: unknown key; did you mean {}?",
            self.section, self.key, self.known
        )
    }
}

/// The keys of `cfg` that no command reads and that are close to one that would be read
/// in their section, in file order. `images` are the project's images (its `docker/`
/// subdirectories and synthetic images), whose sections take an image's keys. Other keys
/// are allowed (other tools may read the file) and so are other sections; the sections
/// an `env=` names hold the container's variables, any names, and are never checked.
pub(crate) fn misspelt(cfg: &super::Cfg, images: &[String]) -> Vec<Misspelt> {
    // Every section's, `[DEFAULT]`'s included (every section sees those); a value that
    // does not read is reported where it is used, not here.
    let env_docked = format!("{ENV}{DOCKED_SUFFIX}");
    let env_sections: Vec<String> = cfg
        .sections()
        .flat_map(|section| {
            [ENV, env_docked.as_str()]
                .map(|key| cfg.get(section, key).ok().flatten())
                .into_iter()
                .flatten()
        })
        .collect();
    let image_keys = || {
        IMAGE_SECTION
            .iter()
            .map(|k| k.to_string())
            .chain(DOCKED.iter().map(|k| format!("{k}{DOCKED_SUFFIX}")))
    };
    let mut out = vec![];
    for section in std::iter::once(super::DEFAULT_SECTION).chain(cfg.sections()) {
        if env_sections.iter().any(|e| e == section) {
            continue;
        }
        let known: Vec<String> = if section == super::DEFAULT_SECTION {
            // Seen by every section: any key that some section reads.
            let tools = TOOL_SECTIONS.iter().flat_map(|(_, keys)| keys.iter());
            image_keys().chain(tools.map(|k| k.to_string())).collect()
        } else if let Some((_, keys)) = TOOL_SECTIONS.iter().find(|(name, _)| *name == section) {
            keys.iter().map(|k| k.to_string()).collect()
        } else if images.iter().any(|i| i == section) {
            image_keys().collect()
        } else {
            continue;
        };
        for (key, line) in cfg.own_keys(section) {
            if known.iter().any(|k| k == key) {
                continue;
            }
            if let Some(closest) = closest(key, &known) {
                out.push(Misspelt {
                    line,
                    section: section.to_string(),
                    key: key.to_string(),
                    known: closest.to_string(),
                });
            }
        }
    }
    out.sort_by_key(|m| m.line);
    out
}

/// The known key `key` is most likely a misspelling of, if any is close enough: a few
/// typos apart (case aside: keys are case-sensitive, so `Volumes` is not `volumes`), or
/// an abbreviation of it (`cmd` for `command`, `args` for `arguments`).
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let lower = key.to_lowercase();
    known
        .iter()
        .filter_map(|k| {
            let distance = strsim::osa_distance(&lower, &k.to_lowercase());
            let allowed = match k.chars().count() {
                0..=4 => 1,
                5..=9 => 2,
                _ => 3,
            };
            if distance <= allowed || abbreviates(k, &lower) {
                Some((distance, k.as_str()))
            } else {
                None
            }
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Is `short` an abbreviation of `long`: its letters in order, the same first letter, the
/// same words (`_`-separated count), and longer than two letters?
fn abbreviates(short: &str, long: &str) -> bool {
    let words = |s: &str| s.split('_').count();
    if short.len() < 3 || short.len() >= long.len() || words(short) != words(long) {
        return false;
    }
    if short.chars().next() != long.chars().next() {
        return false;
    }
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|l| l == c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::cfg::Cfg;
    use std::path::Path;

    fn check(text: &str, images: &[&str]) -> Vec<String> {
        let cfg = Cfg::parse(text, Path::new("docker/dockerutils.cfg")).unwrap();
        let images: Vec<String> = images.iter().map(|s| s.to_string()).collect();
        misspelt(&cfg, &images)
            .into_iter()
            .map(|m| format!("{}: {m}", m.line))
            .collect()
    }

    #[test]
    fn close_unknown_keys_are_found_per_section_with_their_line() {
        let found = check(
            "[DEFAULT]\nport=-p 1:1\nroot=/srv\n\
             [dev]\nvolume=-v a:b\ncommand=sh\nvolumes_docked=-v c:d\nvolume_docked=-v e:f\n\
             Cmd=x\nmy_own_key=1\nenv=dev_env\n\
             [dev_env]\nvolume=not a key here\ncomand=nor this\n\
             [run_image]\nsynthetic_image=shell\n\
             [build_image]\nif_change=True\n\
             [serve_hooks]\napikey=x\nimage=web\n\
             [other_tool]\nvolume=theirs\n",
            &["dev", "shell"],
        );
        assert_eq!(
            found,
            [
                "2: [DEFAULT] port: unknown key; did you mean ports?",
                "5: [dev] volume: unknown key; did you mean volumes?",
                "6: [dev] command: unknown key; did you mean cmd?",
                "8: [dev] volume_docked: unknown key; did you mean volumes_docked?",
                "9: [dev] Cmd: unknown key; did you mean cmd?",
                "16: [run_image] synthetic_image: unknown key; did you mean synthetic_images?",
                "18: [build_image] if_change: unknown key; did you mean if_changed?",
                "20: [serve_hooks] apikey: unknown key; did you mean api_key?",
                "21: [serve_hooks] image: unknown key; did you mean images?",
            ]
        );
    }

    #[test]
    fn env_sections_are_never_checked_whoever_names_them() {
        let text = "[DEFAULT]\nenv_docked=docked_env\n[dev]\nenv=dev_env\n\
                    [dev_env]\nvolume=1\n[docked_env]\nports=1\nport=2\n";
        assert!(check(text, &["dev"]).is_empty());
        // Without the env= that names it, [dev_env] is no image and not checked either.
        assert!(check("[dev_env]\nvolume=1\n", &["dev"]).is_empty());
        // Named after an image, it is an image's section.
        assert_eq!(check("[dev]\nvolume=1\n", &["dev"]).len(), 1);
    }

    #[test]
    fn closeness() {
        let known: Vec<String> = IMAGE_SECTION.iter().map(|k| k.to_string()).collect();
        let closest = |k: &str| closest(k, &known);
        assert_eq!(closest("volume"), Some("volumes"));
        assert_eq!(closest("volumse"), Some("volumes"));
        assert_eq!(closest("command"), Some("cmd"));
        assert_eq!(closest("arguments"), Some("args"));
        assert_eq!(closest("pull_from_on_force"), Some("pull_FROM_on_force"));
        assert_eq!(closest("log_max"), None);
        for far in [
            "root",
            "data_dir",
            "network_mode",
            "volumes_extra",
            "x",
            "description",
        ] {
            assert_eq!(closest(far), None, "{far}");
        }
    }
}
