//! What runs for good rather than once: a service's container replaced by deploys
//! (`deploy-image`, `serve-hooks`), the size-rotated logs of pipelines (`run-image --log`),
//! and the Jupyter servers of `run-notebook` and `nb-dock`.

pub(crate) mod deploy;
pub(crate) mod logrotate;
pub(crate) mod notebook;
