//! Timestamp tags: `tag=timestamp` in an image's section tags each build with its UTC
//! time (`20180923T082316Z`); the newest build is the largest tag, found in the local
//! engine or in the registry the image is published to (the registry v2 tags list, or
//! ECR's ListImages).

use crate::error::{Error, Result};

/// The section value that asks for timestamp tags.
pub(crate) const TIMESTAMP: &str = "timestamp";

/// `20180923T082316Z`?
pub(crate) fn is_stamp(tag: &str) -> bool {
    let b = tag.as_bytes();
    b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

/// The current UTC time as a tag.
pub(crate) fn utc_stamp() -> String {
    let (y, mo, d, h, mi, s) = crate::time::utc_now();
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// The largest timestamp tag among `tags`.
pub(crate) fn newest<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<String> {
    tags.into_iter()
        .filter(|t| is_stamp(t))
        .max()
        .map(str::to_string)
}

/// The timestamp tags of `name` in the local engine.
pub(crate) fn local_tags(name: &str) -> Result<Vec<String>> {
    let out = crate::process::output(
        crate::process::Command::new("docker").args(["images", "--format", "{{.Tag}}", name]),
    )
    .map_err(|e| Error::spawn("docker", e))?;
    if !out.status.success() {
        return Err(Error::Engine(format!(
            "docker images {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|t| is_stamp(t))
        .map(str::to_string)
        .collect())
}

/// An image reference with `tag=timestamp` resolved to the newest build here; left as it
/// is when there is none (the caller says what to do).
pub(crate) fn newest_here(image: crate::project::ImageRef) -> Result<crate::project::ImageRef> {
    if image.tag != TIMESTAMP {
        return Ok(image);
    }
    let found = newest(local_tags(&image.name)?.iter().map(String::as_str));
    Ok(match found {
        Some(tag) => crate::project::ImageRef { tag, ..image },
        None => image,
    })
}

/// The tags of `repository` (`host[:port]/path`) in a registry, from its v2 API
/// (anonymous; plain HTTP for a registry on this machine, as docker allows).
pub(crate) fn registry_tags(repository: &str) -> Result<Vec<String>> {
    let (host, path) = repository
        .split_once('/')
        .ok_or_else(|| Error::Usage(format!("`{repository}` names no registry host")))?;
    let local =
        host.starts_with("localhost") || host.starts_with("127.") || host.starts_with("[::1]");
    let scheme = if local { "http" } else { "https" };
    let url = format!("{scheme}://{host}/v2/{path}/tags/list");
    let failed =
        |why: String| Error::Remote(format!("listing the tags of {repository} ({url}): {why}"));
    let mut response = match ureq::get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(404)) => return Ok(vec![]),
        Err(e) => return Err(failed(e.to_string())),
    };
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| failed(e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| failed(format!("not JSON: {e}")))?;
    Ok(json["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The tags of an ECR repository (all pages of ListImages).
pub(crate) fn ecr_tags(aws: &crate::aws::Aws, repository: &str) -> Result<Vec<String>> {
    let mut out = vec![];
    let mut token = None;
    loop {
        let page = aws
            .block_on(crate::aws::ec2::interruptible(
                aws.ecr()
                    .list_images()
                    .repository_name(repository)
                    .set_next_token(token.take())
                    .send(),
            ))?
            .map_err(|e| crate::aws::api_error("ListImages", e))?;
        out.extend(
            page.image_ids()
                .iter()
                .filter_map(|i| i.image_tag().map(str::to_string)),
        );
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_sort_as_time_does() {
        assert!(is_stamp("20180923T082316Z"));
        assert!(
            !is_stamp("latest") && !is_stamp("20180923T0823Z") && !is_stamp("2018092aT082316Z")
        );
        assert_eq!(
            newest([
                "20180923T082316Z",
                "latest",
                "20190101T000000Z",
                "20181231T235959Z"
            ])
            .as_deref(),
            Some("20190101T000000Z")
        );
        assert!(is_stamp(&utc_stamp()));
    }
}
