//! `ls-dock`: every registered dock with the state of its EC2 instance, from one
//! DescribeInstances call for all of them (the original runs one `aws` process per dock),
//! and its docker context. It first brings the generated ssh config and the contexts in
//! step with the registry (`ssh-config --sync`), for docks registered by 2.0.7 or before
//! this version.

use crate::aws::ec2::{self, InstanceInfo};
use crate::aws::{Aws, AwsArgs};
use crate::dock::{self, Dock};
use crate::error::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "ls-dock",
    version,
    about = "List the registered docks and the state of their EC2 instances",
    after_help = "Example:\n  ls-dock\n\n\
STATE is the instance's (running, stopped…); `unmanaged` for a dock that is no EC2 instance \
of this region (registered by IP, e.g. an on-premises server), `gone` for a registered \
instance that no longer exists. `*` marks the dock this shell is docked to. CONTEXT is \
`current` for the dock that is docker's current context (`docker context use NAME`), `yes` \
for a dock with its docker context, `-` for one without (the warnings say why).\n\n\
It first writes the generated ssh config and the docker contexts of docks registered \
earlier (as `dockerutils ssh-config --sync`)."
)]
pub struct Args {
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// A dock's row: its instance by registered id, else by IP (private, then public).
pub fn state_of(dock: &Dock, instances: &[InstanceInfo]) -> (String, String, String) {
    let by_id =
        ec2::registered_instance_id(dock).map(|id| (id, instances.iter().find(|i| i.id == id)));
    let found = match by_id {
        Some((_, found)) => found,
        None => instances
            .iter()
            .filter(|i| !i.is_gone())
            .find(|i| i.private_ip.as_deref() == Some(&dock.ip))
            .or_else(|| {
                instances
                    .iter()
                    .filter(|i| !i.is_gone())
                    .find(|i| i.public_ip.as_deref() == Some(&dock.ip))
            }),
    };
    match (found, by_id) {
        (Some(i), _) if i.state == "terminated" => (
            i.id.clone(),
            i.instance_type.clone(),
            "gone (terminated)".into(),
        ),
        (Some(i), _) => (i.id.clone(), i.instance_type.clone(), i.state.clone()),
        (None, Some((id, _))) => (id.to_string(), "-".into(), "gone".into()),
        (None, None) => ("-".into(), "-".into(), "unmanaged".into()),
    }
}

/// A dock's CONTEXT cell: `current`, `yes` or `-`.
pub fn context_cell(context: Option<&str>, current_context: &str) -> String {
    match context {
        Some(name) if name == current_context => "current".into(),
        Some(_) => "yes".into(),
        None => "-".into(),
    }
}

/// The aligned table; `contexts` holds each dock's CONTEXT cell.
pub fn table(
    docks: &[Dock],
    rows: &[(String, String, String)],
    contexts: &[String],
    current: Option<&str>,
) -> String {
    const COLUMNS: usize = 7;
    let mut lines = vec![[
        "NAME".to_string(),
        "IP".into(),
        "USER".into(),
        "INSTANCE".into(),
        "TYPE".into(),
        "CONTEXT".into(),
        "STATE".into(),
    ]];
    for ((dock, (id, kind, state)), context) in docks.iter().zip(rows).zip(contexts) {
        let mark = if current == Some(dock.ip.as_str()) {
            "* "
        } else {
            "  "
        };
        lines.push([
            format!("{mark}{}", dock.name()),
            dock.ip.clone(),
            dock.user.clone(),
            id.clone(),
            kind.clone(),
            context.clone(),
            state.clone(),
        ]);
    }
    lines[0][0] = format!("  {}", lines[0][0]);
    let widths: Vec<usize> = (0..COLUMNS)
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c == COLUMNS - 1 {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

fn run(args: &Args) -> Result<i32> {
    // Problems here are warnings: the listing comes first.
    let synced = match super::ssh_config::sync("ls-dock") {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("ls-dock: warning: {e}");
            None
        }
    };
    let docks = dock::all();
    if docks.is_empty() {
        println!("No docks registered (register-dock IP MONIKER, or create-dock)");
        return Ok(0);
    }
    let current = std::env::var("DOCKER_IP").ok();
    let listed = Aws::load(&args.aws).and_then(|aws| ec2::describe(&aws, vec![]));
    let rows: Vec<_> = match &listed {
        Ok(instances) => docks.iter().map(|d| state_of(d, instances)).collect(),
        Err(_) => docks
            .iter()
            .map(|d| {
                let id = ec2::registered_instance_id(d).unwrap_or("-").to_string();
                (id, "-".into(), "?".into())
            })
            .collect(),
    };
    let contexts: Vec<String> = docks
        .iter()
        .map(|d| match &synced {
            Some(s) => context_cell(
                s.contexts.get(&d.dir).map(String::as_str),
                &s.current_context,
            ),
            None => "?".into(),
        })
        .collect();
    print!("{}", table(&docks, &rows, &contexts, current.as_deref()));
    match listed {
        Ok(_) => Ok(0),
        Err(e) => Err(e),
    }
}

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    super::exit_code("ls-dock", run(&args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dock(ip: &str, moniker: &str, id: Option<&str>) -> Dock {
        Dock {
            user: "ubuntu".into(),
            moniker: moniker.into(),
            hostname: ip.into(),
            ip: ip.into(),
            extra: id
                .map(|id| vec![("DOCK_INSTANCE_ID".to_string(), id.to_string())])
                .unwrap_or_default(),
            dir: format!("/h/.docker/{ip}").into(),
        }
    }

    fn instance(id: &str, ip: &str, state: &str) -> InstanceInfo {
        InstanceInfo {
            id: id.into(),
            state: state.into(),
            instance_type: "t3.micro".into(),
            private_ip: Some(ip.into()),
            public_ip: None,
            name: None,
            ..InstanceInfo::default()
        }
    }

    #[test]
    fn matches_by_id_then_by_ip_and_aligns() {
        let instances = [
            instance("i-1", "10.0.0.1", "running"),
            instance("i-2", "10.0.0.2", "stopped"),
            instance("i-old", "10.0.0.3", "terminated"),
        ];
        let docks = [
            dock("10.0.0.1", "gpu", Some("i-1")),
            dock("10.0.0.2", "none", None),
            dock("10.0.0.3", "old", Some("i-old")),
            dock("10.0.0.4", "lab", Some("i-nope")),
            dock("192.168.1.5", "onprem", None),
        ];
        let rows: Vec<_> = docks.iter().map(|d| state_of(d, &instances)).collect();
        let states: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(
            states,
            [
                "running",
                "stopped",
                "gone (terminated)",
                "gone",
                "unmanaged"
            ]
        );
        let contexts: Vec<String> = ["gpu", "10.0.0.2", "", "lab", "onprem"]
            .iter()
            .map(|n| context_cell((!n.is_empty()).then_some(*n), "lab"))
            .collect();
        let text = table(&docks, &rows, &contexts, Some("10.0.0.2"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("  NAME "), "{text}");
        assert!(lines[2].starts_with("* 10.0.0.2 "), "{text}");
        let context_col = lines[0].find("CONTEXT").unwrap();
        let cells: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l[context_col..].split_whitespace().next().unwrap())
            .collect();
        assert_eq!(cells, ["yes", "yes", "-", "current", "yes"], "{text}");
        let col = lines[0].find("STATE").unwrap();
        assert!(
            lines
                .iter()
                .skip(1)
                .all(|l| l.len() > col && &l[col - 2..col] == "  "),
            "{text}"
        );
    }
}
