//! `~/.docker/dock.cfg`: defaults for `create-dock`, in the format the original's bash
//! `create-dock` sourced (`key="value"` lines). It is read, never run: values are
//! unquoted with shell-word rules and nothing else of the shell applies.
//!
//! ```text
//! key_name="my-key"
//! security_group_ids="sg-0a1 sg-0b2"
//! iam_instance_profile="docker-dock"
//! subnet_id="subnet-0c3"
//! tags="team=ml cost_center=42"
//! ami_name="ubuntu-docker"         # or ami_id="ami-…"
//! instance_type="c5.xlarge"
//! volume_size=100
//! idle_stop="1h"                   # or off
//! spot=true
//! price_per_hour="p3.2xlarge=3.06 c5.xlarge=0.17"   # or one number for every dock
//! ```

use crate::dock::idle::Limit;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub(crate) const DEFAULT_INSTANCE_TYPE: &str = "c5.xlarge";
pub(crate) const DEFAULT_VOLUME_SIZE: i32 = 100;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DockCfg {
    pub key_name: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile: Option<String>,
    pub subnet_id: Option<String>,
    /// Extra tags, in order.
    pub tags: Vec<(String, String)>,
    pub ami_id: Option<String>,
    pub ami_name: Option<String>,
    pub instance_type: Option<String>,
    pub volume_size: Option<i32>,
    pub volume_type: Option<String>,
    pub device_name: Option<String>,
    /// The ssh user registered for new docks.
    pub user: Option<String>,
    /// The idle-stop limit of new docks.
    pub idle_stop: Option<Limit>,
    /// Launch new docks as spot instances.
    pub spot: Option<bool>,
    /// What a dock costs an hour, for ls-dock: one price for every instance type, and
    /// prices by type (which win).
    pub price_per_hour: Prices,
    /// Keys this version does not know (reported, not fatal: old files keep working).
    pub unknown: Vec<String>,
    pub path: PathBuf,
}

/// `price_per_hour=`: `0.17` (every dock) or `p3.2xlarge=3.06 c5.xlarge=0.17` words.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Prices {
    pub any: Option<f64>,
    pub by_type: Vec<(String, f64)>,
}

impl Prices {
    /// The price of an hour of this instance type, if dock.cfg says it.
    pub(crate) fn of(&self, instance_type: &str) -> Option<f64> {
        self.by_type
            .iter()
            .find(|(t, _)| t == instance_type)
            .map(|(_, p)| *p)
            .or(self.any)
    }
}

pub(crate) fn path() -> PathBuf {
    crate::dock::registry_dir().join("dock.cfg")
}

/// Reads the file; a missing file is an empty configuration.
pub(crate) fn load(path: &Path) -> Result<DockCfg> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockCfg {
            path: path.into(),
            ..DockCfg::default()
        }),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<DockCfg> {
    let mut cfg = DockCfg {
        path: path.into(),
        ..DockCfg::default()
    };
    let err = |line: usize, message: String| Error::Cfg {
        path: path.into(),
        line,
        message,
    };
    // Continuation lines (a trailing backslash) join the next line, as in the shell.
    let mut logical: Vec<(usize, String)> = vec![];
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        if let Some(head) = raw.strip_suffix('\\') {
            acc.push_str(head);
            pending = Some((start, acc));
        } else {
            acc.push_str(raw);
            logical.push((start, acc));
        }
    }
    logical.extend(pending);
    for (line_no, line) in logical {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw_value)) = line.split_once('=') else {
            return Err(err(
                line_no,
                format!("expected key=\"value\", found `{line}`"),
            ));
        };
        let words = shlex::split(raw_value)
            .ok_or_else(|| err(line_no, format!("unbalanced quotes in `{line}`")))?;
        // `key="a b" # comment`: a word starting with # ends the value.
        let words: Vec<String> = words
            .into_iter()
            .take_while(|w| !w.starts_with('#'))
            .collect();
        let value = words.join(" ");
        let int = |v: &str| {
            v.parse::<i32>()
                .map_err(|_| err(line_no, format!("{key} must be a number of GB, not `{v}`")))
        };
        match key.trim() {
            "key_name" => cfg.key_name = Some(value),
            "security_group_ids" => {
                cfg.security_group_ids = value
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "iam_instance_profile" => cfg.iam_instance_profile = Some(value),
            "subnet_id" => cfg.subnet_id = Some(value),
            "tags" => {
                for word in value.split_whitespace() {
                    let (k, v) = word.split_once('=').ok_or_else(|| {
                        err(line_no, format!("tags takes key=value words, not `{word}`"))
                    })?;
                    cfg.tags.push((k.into(), v.into()));
                }
            }
            "tag_specifications" => cfg.tags.extend(parse_tag_specifications(&value)),
            "ami_id" | "ami" => cfg.ami_id = Some(value),
            "ami_name" => cfg.ami_name = Some(value),
            "instance_type" => cfg.instance_type = Some(value),
            "volume_size" => cfg.volume_size = Some(int(&value)?),
            "volume_type" => cfg.volume_type = Some(value),
            "device_name" => cfg.device_name = Some(value),
            "user" | "dock_user" => cfg.user = Some(value),
            "idle_stop" => {
                cfg.idle_stop = Some(
                    Limit::parse(&value).map_err(|e| err(line_no, format!("idle_stop: {e}")))?,
                )
            }
            "spot" => {
                cfg.spot = Some(match value.to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" | "on" => true,
                    "false" | "no" | "0" | "off" | "" => false,
                    _ => {
                        return Err(err(
                            line_no,
                            format!("spot is true or false, not `{value}`"),
                        ));
                    }
                })
            }
            "price_per_hour" => {
                let price = |word: &str, what: &str| {
                    word.parse::<f64>()
                        .ok()
                        .filter(|p| p.is_finite() && *p >= 0.0)
                        .ok_or_else(|| {
                            err(
                                line_no,
                                format!(
                                    "price_per_hour: `{what}` is not a price (a number of \
                                     dollars, e.g. 0.17, or TYPE=PRICE words)"
                                ),
                            )
                        })
                };
                for word in value.split_whitespace() {
                    match word.split_once('=') {
                        Some((kind, p)) => {
                            let p = price(p, word)?;
                            cfg.price_per_hour.by_type.push((kind.to_string(), p));
                        }
                        None => cfg.price_per_hour.any = Some(price(word, word)?),
                    }
                }
            }
            other => cfg.unknown.push(other.to_string()),
        }
    }
    Ok(cfg)
}

/// The AWS CLI shorthand the original's file used:
/// `ResourceType=instance,Tags=[{Key=team,Value=ml},{Key=owner,Value='A & B'}]`.
/// `Name` and `created_by` are dropped: create-dock sets them itself.
fn parse_tag_specifications(text: &str) -> Vec<(String, String)> {
    let mut tags = vec![];
    for part in text.split('{').skip(1) {
        let body = part.split('}').next().unwrap_or("");
        let mut key = None;
        let mut value = None;
        for field in body.split(',') {
            let unquote = |s: &str| s.trim().trim_matches(['\'', '"']).to_string();
            if let Some(k) = field.trim().strip_prefix("Key=") {
                key = Some(unquote(k));
            } else if let Some(v) = field.trim().strip_prefix("Value=") {
                value = Some(unquote(v));
            }
        }
        if let (Some(k), Some(v)) = (key, value)
            && k != "Name"
            && k != "created_by"
        {
            tags.push((k, v));
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_original_files_keys_without_running_them() {
        let text = r#"
# dock defaults
key_name="my-key"
security_group_ids="sg-1 sg-2"
iam_instance_profile="app"   # a comment
subnet_id=subnet-9
tag_specifications="ResourceType=instance,Tags=[{Key=Name,Value=${INSTANCE_NAME}},\
        {Key=business_unit,Value='Archiving & Governance'},{Key=support_level,Value=dev}]"
volume_size=50
ami_name="$(rm -rf /)"
something_else=1
"#;
        let cfg = parse(text, Path::new("/h/.docker/dock.cfg")).unwrap();
        assert_eq!(cfg.key_name.as_deref(), Some("my-key"));
        assert_eq!(cfg.security_group_ids, ["sg-1", "sg-2"]);
        assert_eq!(cfg.iam_instance_profile.as_deref(), Some("app"));
        assert_eq!(cfg.subnet_id.as_deref(), Some("subnet-9"));
        assert_eq!(
            cfg.tags,
            [
                (
                    "business_unit".to_string(),
                    "Archiving & Governance".to_string()
                ),
                ("support_level".to_string(), "dev".to_string())
            ]
        );
        assert_eq!(cfg.volume_size, Some(50));
        assert_eq!(cfg.ami_name.as_deref(), Some("$(rm -rf /)"));
        assert_eq!(cfg.unknown, ["something_else"]);
    }

    #[test]
    fn idle_stop_spot_and_prices() {
        let cfg = parse(
            "idle_stop=90m\nspot=yes\nprice_per_hour=\"p3.2xlarge=3.06 0.1\"\n",
            Path::new("/d.cfg"),
        )
        .unwrap();
        assert_eq!(cfg.idle_stop, Some(Limit::After(5400)));
        assert_eq!(cfg.spot, Some(true));
        assert_eq!(cfg.price_per_hour.of("p3.2xlarge"), Some(3.06));
        assert_eq!(cfg.price_per_hour.of("t3.micro"), Some(0.1));
        let off = parse("idle_stop=off\nspot=false\n", Path::new("/d.cfg")).unwrap();
        assert_eq!((off.idle_stop, off.spot), (Some(Limit::Off), Some(false)));
        assert_eq!(off.price_per_hour.of("t3.micro"), None);
        for (line, says) in [
            (
                "idle_stop=soon",
                "/d.cfg:1: idle_stop: `soon` is not an idle limit",
            ),
            ("spot=maybe", "/d.cfg:1: spot is true or false, not `maybe`"),
            (
                "price_per_hour=t3.micro=cheap",
                "/d.cfg:1: price_per_hour: `t3.micro=cheap`",
            ),
            ("price_per_hour=-1", "/d.cfg:1: price_per_hour: `-1`"),
        ] {
            let e = parse(line, Path::new("/d.cfg")).unwrap_err().to_string();
            assert!(e.starts_with(says), "{line}: {e}");
        }
    }

    #[test]
    fn bad_lines_name_their_line() {
        let err = parse("key_name=a\nvolume_size=big\n", Path::new("/d.cfg")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/d.cfg:2: volume_size must be a number of GB, not `big`"
        );
        let err = parse("just words\n", Path::new("/d.cfg")).unwrap_err();
        assert!(err.to_string().starts_with("/d.cfg:1: expected"), "{err}");
    }
}
