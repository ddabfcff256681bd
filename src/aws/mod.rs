//! The AWS boundary: configuration (the standard credential chain and region resolution
//! of aws-config, plus `AWS_ENDPOINT_URL` / `--endpoint-url`), the one async runtime the
//! commands block on, and AWS errors turned into ours, with what to do about them.
//!
//! Submodules: [`ec2`] (docks that are EC2 instances) and [`ecr`] (publish-image).

pub(crate) mod ec2;
pub(crate) mod ecr;
pub(crate) mod pricing;

use crate::error::{Error, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Flags every AWS command takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct AwsArgs {
    /// AWS API endpoint (LocalStack, moto…) [default: $AWS_ENDPOINT_URL, else AWS]
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint_url: Option<String>,
    /// AWS region [default: $AWS_REGION, $AWS_DEFAULT_REGION, else the profile's]
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,
}

/// Regions this build knows (botocore's endpoint list, every partition). A region outside
/// it is refused before any request, with `DOCKERUTILS_ANY_REGION=1` as the way out for a
/// region newer than this list.
pub(crate) const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "us-isob-west-1",
    "eu-isoe-west-1",
    "us-isof-east-1",
    "us-isof-south-1",
    "eusc-de-east-1",
];

/// A loaded AWS configuration and the runtime its clients run on.
pub(crate) struct Aws {
    pub config: SdkConfig,
    pub runtime: tokio::runtime::Runtime,
}

impl Aws {
    /// Resolves region, endpoint and credentials; fails early, with the fix, when any
    /// is missing or wrong.
    pub(crate) fn load(args: &AwsArgs) -> Result<Aws> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the async runtime", e))?;
        let config = runtime.block_on(load_config(args))?;
        Ok(Aws { config, runtime })
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub(crate) fn region(&self) -> String {
        self.config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    pub(crate) fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config)
    }

    pub(crate) fn ecr(&self) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::new(&self.config)
    }

    pub(crate) fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }
}

async fn load_config(args: &AwsArgs) -> Result<SdkConfig> {
    // HTTPS with rustls on ring (see Cargo.toml).
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    let Some(region) = config.region().map(|r| r.to_string()) else {
        return Err(Error::Aws {
            message: "no AWS region is configured".into(),
            hint: Some(
                "set AWS_REGION (e.g. `export AWS_REGION=us-east-1`), `region = …` in \
                 ~/.aws/config, or pass --region"
                    .into(),
            ),
        });
    };
    check_region(
        &region,
        std::env::var_os("DOCKERUTILS_ANY_REGION").is_some(),
    )?;
    let _ = ENDPOINT.set(match config.endpoint_url() {
        Some(url) => url.to_string(),
        None => format!("AWS (region {region})"),
    });
    let Some(provider) = config.credentials_provider() else {
        return Err(no_credentials("no credential provider"));
    };
    if let Err(e) = provider.provide_credentials().await {
        return Err(no_credentials(&e.to_string()));
    }
    Ok(config)
}

fn no_credentials(why: &str) -> Error {
    Error::Aws {
        message: format!("no AWS credentials found ({why})"),
        hint: Some(
            "configure them the usual AWS way: `aws configure` (~/.aws/credentials), \
             `aws sso login --profile NAME` with AWS_PROFILE=NAME, or AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY in the environment; on EC2, an instance role"
                .into(),
        ),
    }
}

/// A region must be one AWS has (a typo would otherwise surface as an unreachable host).
pub(crate) fn check_region(region: &str, any: bool) -> Result<()> {
    if any || REGIONS.contains(&region) {
        return Ok(());
    }
    let prefix = region.split('-').next().unwrap_or("");
    let mut close: Vec<&str> = REGIONS
        .iter()
        .copied()
        .filter(|r| r.starts_with(prefix))
        .collect();
    if close.is_empty() {
        close = REGIONS
            .iter()
            .copied()
            .filter(|r| r.starts_with("us-"))
            .collect();
    }
    Err(Error::Aws {
        message: format!("unknown AWS region `{region}`"),
        hint: Some(format!(
            "regions look like {}; set AWS_REGION or --region to one of them \
             (DOCKERUTILS_ANY_REGION=1 accepts a region newer than this dockerutils)",
            close.join(", ")
        )),
    })
}

/// The endpoint of this process's AWS calls, as errors name it (set by [`Aws::load`]).
static ENDPOINT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn endpoint_said() -> String {
    ENDPOINT.get().cloned().unwrap_or_else(|| "AWS".to_string())
}

/// The kind of the I/O error at the root of a transport failure, if there is one.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

/// An answer that is not one of AWS's (no error code, nothing the SDK could read): the
/// endpoint is some other server.
fn not_aws(operation: &str) -> Error {
    Error::Aws {
        message: format!(
            "{operation} to {}: the answer is not an AWS answer (it could not be read as one)",
            endpoint_said()
        ),
        hint: Some(
            "is AWS_ENDPOINT_URL / --endpoint-url the address of an AWS API (or of an emulator \
             of it), and not of another server?"
                .into(),
        ),
    }
}

/// An AWS call's error, with the operation it was and what to do.
pub(crate) fn api_error<E, R>(operation: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // Transport failures are said in one sentence (which endpoint, what happened), never
    // the SDK's debug dump of its error chain.
    let hint = || {
        Some(
            "check the network, AWS_ENDPOINT_URL / --endpoint-url (an emulator must be \
             running) and the region"
                .to_string(),
        )
    };
    match &err {
        SdkError::DispatchFailure(d) => {
            let what = if d.is_timeout() {
                "timed out".to_string()
            } else if d.is_io() {
                match d.as_connector_error().and_then(|c| io_kind(c)) {
                    Some(std::io::ErrorKind::ConnectionRefused) => {
                        "could not connect: connection refused".to_string()
                    }
                    Some(kind) => format!("could not connect: {kind}"),
                    None => "could not connect".to_string(),
                }
            } else {
                "could not be sent (no answer from the endpoint)".to_string()
            };
            Error::Aws {
                message: format!("{operation} to {}: {what}", endpoint_said()),
                hint: hint(),
            }
        }
        SdkError::TimeoutError(_) => Error::Aws {
            message: format!("{operation} to {}: timed out", endpoint_said()),
            hint: hint(),
        },
        SdkError::ServiceError(_) if err.code().is_none() && err.message().is_none() => {
            not_aws(operation)
        }
        SdkError::ResponseError(_) => not_aws(operation),
        _ => {
            let code = err.code().unwrap_or("").to_string();
            let text = err.message().map(str::to_string).unwrap_or_else(|| {
                aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()
            });
            let hint = match code.as_str() {
                "AuthFailure"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "ExpiredTokenException" => Some(
                    "the AWS credentials were refused: refresh them (`aws sso login`, \
                     `aws configure`) or check AWS_PROFILE"
                        .into(),
                ),
                "UnauthorizedOperation" | "AccessDeniedException" | "AccessDenied" => Some(
                    "the credentials lack the permission for this call: ask for it, or use \
                     another profile (AWS_PROFILE)"
                        .into(),
                ),
                _ => None,
            };
            let message = if code.is_empty() {
                format!("{operation}: {text}")
            } else {
                format!("{operation}: {code}: {text}")
            };
            Error::Aws { message, hint }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_regions_are_refused_with_close_ones_named() {
        assert!(check_region("eu-west-1", false).is_ok());
        assert!(check_region("xx-new-1", true).is_ok());
        let err = check_region("eu-wset-1", false).unwrap_err();
        assert_eq!(err.to_string(), "unknown AWS region `eu-wset-1`");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("eu-west-1") && !hint.contains("us-east-1"),
            "{hint}"
        );
    }
}
