//! ECR for publish-image: the account, a registry login, the repository.

use super::ec2::interruptible;
use super::{Aws, api_error};
use crate::error::{Error, Result};
use base64::Engine as _;

/// The account of the credentials (STS GetCallerIdentity), for `{account}`.
pub(crate) fn account(aws: &Aws) -> Result<String> {
    let out = aws
        .block_on(interruptible(aws.sts().get_caller_identity().send()))?
        .map_err(|e| api_error("GetCallerIdentity", e))?;
    out.account().map(str::to_string).ok_or_else(|| Error::Aws {
        message: "GetCallerIdentity returned no account".into(),
        hint: None,
    })
}

/// A registry login: user, password (a secret: never print it) and the registry address.
pub(crate) struct Login {
    pub user: String,
    pub password: String,
    pub endpoint: String,
}

impl Login {
    /// The registry host the token is for: the proxy endpoint without its scheme
    /// (`https://123.dkr.ecr.us-east-1.amazonaws.com` -> `123.dkr.ecr…`).
    pub(crate) fn registry(&self) -> &str {
        let e = self.endpoint.as_str();
        e.strip_prefix("https://")
            .or_else(|| e.strip_prefix("http://"))
            .unwrap_or(e)
            .trim_end_matches('/')
    }
}

pub(crate) fn login(aws: &Aws) -> Result<Login> {
    let out = aws
        .block_on(interruptible(aws.ecr().get_authorization_token().send()))?
        .map_err(|e| api_error("GetAuthorizationToken", e))?;
    let data = out.authorization_data().first().ok_or_else(|| Error::Aws {
        message: "GetAuthorizationToken returned no authorization data".into(),
        hint: None,
    })?;
    let bad = |why: &str| Error::Aws {
        message: format!("ECR returned an authorization token that {why}"),
        hint: None,
    };
    let token = data
        .authorization_token()
        .ok_or_else(|| bad("is missing"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad("is not base64"))?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad("is not text"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| bad("is not user:password"))?;
    Ok(Login {
        user: user.into(),
        password: password.into(),
        endpoint: data.proxy_endpoint().unwrap_or_default().to_string(),
    })
}

/// Creates the repository unless it exists. True when it was created.
pub(crate) fn ensure_repository(aws: &Aws, name: &str) -> Result<bool> {
    let out = aws.block_on(interruptible(
        aws.ecr().create_repository().repository_name(name).send(),
    ))?;
    match out {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_already_exists_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(api_error("CreateRepository", e)),
    }
}
