//! Every key dockerutils reads from `docker/dockerutils.cfg`, in one list: the code reads
//! keys by these constants (a misspelt constant does not compile).

/// `[run_image]`: run-image's own settings.
pub const RUN_IMAGE: &str = "run_image";
/// `[build_image]`: build-image's own settings.
pub const BUILD_IMAGE: &str = "build_image";
/// `[serve_hooks]`: serve-hooks' settings.
pub const SERVE_HOOKS: &str = "serve_hooks";
/// `[run_notebook]`: run-notebook's default images.
pub const RUN_NOTEBOOK: &str = "run_notebook";

// [run_image]
pub const SYNTHETIC_IMAGES: &str = "synthetic_images";
// [build_image]
pub const IF_CHANGED: &str = "if_changed";
// [serve_hooks]
pub const API_KEY: &str = "api_key";
pub const IMAGES: &str = "images";
// [run_notebook]
pub const IMAGE: &str = "image";
pub const GPU_IMAGE: &str = "gpu_image";

// An image's section: what it is called…
pub const NAME: &str = "name";
pub const PREFIX: &str = "prefix";
pub const TAG: &str = "tag";
// …how it is built…
pub const BUILD_ARGS: &str = "build_args";
pub const PULL_FROM_ON_FORCE: &str = "pull_FROM_on_force";
pub const PRE_BUILD_SCRIPT: &str = "pre_build_script";
pub const POST_BUILD_SCRIPT: &str = "post_build_script";
pub const SOURCE_BRANCH: &str = "source_branch";
// …run (these have `_docked` variants)…
pub const ENVIRONMENT: &str = "environment";
pub const ENV: &str = "env";
pub const INTERACTIVE: &str = "interactive";
pub const GPU: &str = "gpu";
pub const NETWORK: &str = "network";
pub const VOLUMES: &str = "volumes";
pub const PORTS: &str = "ports";
pub const ARGS: &str = "args";
pub const CMD: &str = "cmd";
// …run (without)…
pub const PULL_LATEST: &str = "pull_latest";
pub const LOG_DIR: &str = "log_dir";
pub const LOG_MAX_SIZE: &str = "log_max_size";
pub const LOG_KEEP: &str = "log_keep";
// …published and deployed.
pub const IMAGE_REPO: &str = "image_repo";
pub const PUBLICATION_TAG: &str = "publication_tag";
pub const SERVICE: &str = "service";

/// What `<key>_docked` is when docked (`DOCKER_IP` set): `KEY_docked`.
pub const DOCKED_SUFFIX: &str = "_docked";

/// The run-image keys read with their `_docked` variant first when docked.
pub const DOCKED: &[&str] = &[
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
pub const IMAGE_SECTION: &[&str] = &[
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
pub const TOOL_SECTIONS: &[(&str, &[&str])] = &[
    (RUN_IMAGE, &[SYNTHETIC_IMAGES]),
    (BUILD_IMAGE, &[IF_CHANGED]),
    (SERVE_HOOKS, &[API_KEY, IMAGES]),
    (RUN_NOTEBOOK, &[IMAGE, GPU_IMAGE]),
];
