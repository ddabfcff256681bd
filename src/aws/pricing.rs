//! What an instance type costs an hour, for ls-dock: the on-demand Linux price from AWS's
//! Price List API (`GetProducts`, served from us-east-1), cached for a day in the user's
//! cache directory (`~/.cache/dockerutils/prices.json`), so that ls-dock asks at most once
//! a day per type and region. Never a table of our own: prices change, and a table would go
//! stale without a word.
//!
//! One signed JSON call does not warrant `aws-sdk-pricing` (a crate as large as the EC2 one
//! to compile): the request is signed by `aws-sigv4`, the signer the SDK itself uses (already
//! built), with the credentials of the loaded configuration, and sent with ureq. An endpoint
//! override (`AWS_ENDPOINT_URL`, `--endpoint-url`) applies, as to every other call.

use super::Aws;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A price is kept a day; a failed lookup (no permission, no network) an hour, so that a
/// list is not slowed by a call that fails every time.
const PRICE_TTL: u64 = 24 * 3600;
const FAILURE_TTL: u64 = 3600;

/// Where the cache lives.
pub(crate) fn cache_path() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(|| dirs::home_dir().unwrap_or_default().join(".cache"))
        .join("dockerutils")
        .join("prices.json")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The Price List's endpoint and signing region for a region's partition.
fn endpoint(aws: &Aws, region: &str) -> (String, &'static str) {
    let (url, signing) = if region.starts_with("cn-") {
        (
            "https://api.pricing.cn-northwest-1.amazonaws.com.cn",
            "cn-northwest-1",
        )
    } else {
        ("https://api.pricing.us-east-1.amazonaws.com", "us-east-1")
    };
    match aws.config.endpoint_url() {
        Some(url) => (url.trim_end_matches('/').to_string(), signing),
        None => (url.to_string(), signing),
    }
}

/// The hourly price of each of `types` in `region` that is known: from the cache, else
/// asked of the Price List (all at once, given up after `timeout`). The second value says
/// why some could not be had, when a lookup failed.
pub(crate) fn hourly_prices(
    aws: &Aws,
    region: &str,
    types: &[String],
    timeout: Duration,
) -> (HashMap<String, f64>, Option<String>) {
    let path = cache_path();
    let mut cache: serde_json::Map<String, Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let key = |kind: &str| format!("{region} {kind}");
    let fresh = |entry: &Value| {
        let age = now().saturating_sub(entry["at"].as_u64().unwrap_or(0));
        age < if entry["error"].is_string() {
            FAILURE_TTL
        } else {
            PRICE_TTL
        }
    };
    let mut missing: Vec<&String> = types
        .iter()
        .filter(|t| !cache.get(&key(t)).is_some_and(fresh))
        .collect();
    missing.sort();
    missing.dedup();
    let mut failure = None;
    if !missing.is_empty() {
        let creds = aws.config.credentials_provider().map(|p| {
            aws.block_on(async move { p.provide_credentials().await })
                .map_err(|e| e.to_string())
        });
        match creds {
            Some(Ok(creds)) => {
                let (url, signing) = endpoint(aws, region);
                let answers = std::thread::scope(|s| {
                    let asked: Vec<_> = missing
                        .iter()
                        .map(|kind| {
                            let (creds, url) = (creds.clone(), url.clone());
                            s.spawn(move || get_price(&url, signing, &creds, region, kind, timeout))
                        })
                        .collect();
                    asked
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|_| Err("failed".into())))
                        .collect::<Vec<_>>()
                });
                for (kind, answer) in missing.iter().zip(answers) {
                    let entry = match answer {
                        Ok(price) => json!({ "price": price, "at": now() }),
                        Err(e) => {
                            failure.get_or_insert(e.clone());
                            json!({ "error": e, "at": now() })
                        }
                    };
                    cache.insert(key(kind), entry);
                }
                save(&path, &cache);
            }
            Some(Err(e)) => failure = Some(e),
            None => failure = Some("no AWS credentials".into()),
        }
    }
    let prices = types
        .iter()
        .filter_map(|t| Some((t.clone(), cache.get(&key(t))?["price"].as_f64()?)))
        .collect();
    (prices, failure)
}

/// Writes the cache whole, through a temporary file (two ls-docks at once each write a
/// whole one).
fn save(path: &std::path::Path, cache: &serde_json::Map<String, Value>) {
    let Some(dir) = path.parent() else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".prices.{}.json", std::process::id()));
    if std::fs::write(&tmp, Value::Object(cache.clone()).to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// The GetProducts request for the on-demand Linux price of a type in a region.
pub(crate) fn request_body(region: &str, kind: &str) -> String {
    let term =
        |field: &str, value: &str| json!({"Type": "TERM_MATCH", "Field": field, "Value": value});
    json!({
        "ServiceCode": "AmazonEC2",
        "FormatVersion": "aws_v1",
        "MaxResults": 1,
        "Filters": [
            term("instanceType", kind),
            term("regionCode", region),
            term("operatingSystem", "Linux"),
            term("tenancy", "Shared"),
            term("preInstalledSw", "NA"),
            term("capacitystatus", "Used"),
        ],
    })
    .to_string()
}

/// The price in a GetProducts answer: `None` when no product matched (Ok: the type has no
/// such price), an error when the answer is not one.
pub(crate) fn parse_answer(text: &str) -> Result<Option<f64>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|_| "not a Price List answer")?;
    let Some(list) = doc["PriceList"].as_array() else {
        return Err("not a Price List answer".into());
    };
    let Some(first) = list.first() else {
        return Ok(None);
    };
    // Each product is a JSON document in a string.
    let product: Value = match first {
        Value::String(s) => serde_json::from_str(s).map_err(|_| "a product that is no JSON")?,
        other => other.clone(),
    };
    let usd = product["terms"]["OnDemand"]
        .as_object()
        .into_iter()
        .flat_map(|terms| terms.values())
        .filter_map(|term| term["priceDimensions"].as_object())
        .flat_map(|dims| dims.values())
        .filter(|dim| dim["unit"].as_str().is_none_or(|u| u.starts_with("Hr")))
        .find_map(|dim| dim["pricePerUnit"]["USD"].as_str()?.parse::<f64>().ok());
    Ok(usd)
}

fn get_price(
    url: &str,
    signing_region: &str,
    creds: &Credentials,
    region: &str,
    kind: &str,
    timeout: Duration,
) -> Result<Option<f64>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let body = request_body(region, kind);
    let target = "AWSPriceListService.GetProducts";
    let content_type = "application/x-amz-json-1.1";
    let headers = [("content-type", content_type), ("x-amz-target", target)];
    let identity = creds.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(signing_region)
        .name("pricing")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("{url}/"),
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent
        .post(format!("{url}/"))
        .header("content-type", content_type)
        .header("x-amz-target", target);
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let mut response = request
        .send(body.as_bytes())
        .map_err(|e| format!("GetProducts: {e}"))?;
    let status = response.status();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GetProducts: {e}"))?;
    if !status.is_success() {
        let doc: Value = serde_json::from_str(&text).unwrap_or_default();
        let code = doc["__type"]
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| status.to_string());
        return Err(format!("GetProducts: {code}"));
    }
    parse_answer(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hourly_on_demand_price_of_a_price_list_answer() {
        // The shape AWS answers (one product, trimmed).
        let product = json!({
            "product": {"attributes": {"instanceType": "t3.micro"}},
            "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": {
                "SKU.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": "0.0104000000"}}
            }}}}
        });
        let answer = json!({"FormatVersion": "aws_v1", "PriceList": [product.to_string()]});
        assert_eq!(parse_answer(&answer.to_string()), Ok(Some(0.0104)));
        assert_eq!(parse_answer(r#"{"PriceList": []}"#), Ok(None));
        assert!(parse_answer("<html>").is_err());
        let body: Value = serde_json::from_str(&request_body("eu-west-1", "p3.2xlarge")).unwrap();
        assert_eq!(body["ServiceCode"], "AmazonEC2");
        assert!(
            body["Filters"].as_array().unwrap().contains(
                &json!({"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-west-1"})
            )
        );
    }
}
