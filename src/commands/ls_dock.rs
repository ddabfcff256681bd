//! `ls-dock`: every registered dock with the state of its EC2 instance, from one
//! DescribeInstances call for all of them (the original runs one `aws` process per dock;
//! none when no dock is an EC2 one, so that servers registered by register-dock list
//! without AWS credentials or region),
//! what it is costing (lifecycle, time running, hourly price and cost since it started),
//! how long it has been idle (its watcher's state, read over ssh from every running dock
//! at once, given up after `--timeout`), and its docker context. It first brings the
//! generated ssh config and the contexts in step with the registry (`ssh-config --sync`),
//! for docks registered by 2.0.7 or before this version.

use crate::aws::ec2::{self, InstanceInfo};
use crate::aws::{Aws, AwsArgs, pricing};
use crate::dock::cfg::{self as dock_cfg, Prices};
use crate::dock::idle::{self, Answer, human};
use crate::dock::{self, Dock};
use crate::error::Result;
use clap::Parser;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Parser)]
#[command(
    name = "ls-dock",
    version,
    about = "List the registered docks: their EC2 instances' states, what they cost, how long they have been idle",
    after_help = "Example:\n  ls-dock\n\n\
STATE is the instance's (running, stopped…; `stopped (spot interruption)` when AWS took a \
spot dock's capacity back, `stopped (shut down on the dock)` when it was powered off from \
inside, as its idle watcher does); `unmanaged` for a dock that is no EC2 instance of this \
region (registered by IP, e.g. an on-premises server), `gone` for a registered instance that \
no longer exists. When no dock is an EC2 one by its registration (create-dock's), AWS is not \
asked (unless --region or --endpoint-url is given), and docks registered by IP are `unmanaged`. LIFECYCLE is spot or on-demand; UPTIME the time since the instance last \
started. IDLE is how long the dock has been unused and, after the /, its idle-stop limit, \
from the dock's watcher (`?`: the dock did not answer within --timeout; `none`: no watcher). \
$/H is the price of an hour (dock.cfg's price_per_hour, else AWS's Price List, on-demand \
Linux: for a spot dock, marked ≤, what it costs at most), COST that price times UPTIME. `*` \
marks the dock this shell is docked to. CONTEXT is `current` for the dock that is docker's \
current context (`docker context use NAME`), `yes` for a dock with its docker context, `-` \
for one without (the warnings say why).\n\n\
It first writes the generated ssh config and the docker contexts of docks registered \
earlier (as `dockerutils ssh-config --sync`)."
)]
pub(crate) struct Args {
    /// Seconds the listing waits for AWS, the docks' idle state over ssh and prices (a dock
    /// that has not answered by then shows `?`)
    #[arg(long, value_name = "SECONDS", default_value_t = 1.5, value_parser = parse_timeout)]
    pub timeout: f64,
    #[command(flatten)]
    pub aws: AwsArgs,
}

fn parse_timeout(text: &str) -> std::result::Result<f64, String> {
    // The range is checked as it is said: 0.1 is the least that still leaves the docks
    // time to answer over an open shared connection.
    let seconds = text
        .parse::<f64>()
        .ok()
        .filter(|t| !t.is_nan())
        .ok_or_else(|| format!("`{text}` is not a number of seconds (0.1 to 600)"))?;
    if (0.1..=600.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("must be between 0.1 and 600 seconds, not `{text}`"))
    }
}

/// What EC2 says of a dock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// Its instance id, or `-`.
    pub instance: String,
    /// Its instance type, or `-`.
    pub kind: String,
    /// `spot`, `on-demand`, or `-` for a dock without an instance.
    pub lifecycle: String,
    pub state: String,
    /// When the running instance last started (epoch seconds).
    pub started: Option<i64>,
}

impl Row {
    fn unknown(dock: &Dock) -> Row {
        Row {
            instance: ec2::registered_instance_id(dock).unwrap_or("-").to_string(),
            kind: "-".into(),
            lifecycle: "-".into(),
            state: "?".into(),
            started: None,
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.state == "running"
    }

    pub(crate) fn is_spot(&self) -> bool {
        self.lifecycle == "spot"
    }
}

/// A dock's row: its instance by registered id, else by IP (private, then public).
pub(crate) fn state_of(dock: &Dock, instances: &[InstanceInfo]) -> Row {
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
    let none = |id: &str, state: &str| Row {
        instance: id.into(),
        kind: "-".into(),
        lifecycle: "-".into(),
        state: state.into(),
        started: None,
    };
    match (found, by_id) {
        (Some(i), _) => Row {
            instance: i.id.clone(),
            kind: i.instance_type.clone(),
            lifecycle: if i.is_spot() { "spot" } else { "on-demand" }.into(),
            state: state_cell(i),
            started: (i.state == "running").then_some(i.launch_time).flatten(),
        },
        (None, Some((id, _))) => none(id, "gone"),
        (None, None) => none("-", "unmanaged"),
    }
}

/// The STATE cell: the instance's state, with why it stopped when that is worth knowing.
fn state_cell(i: &InstanceInfo) -> String {
    let why = match i.state_reason.as_deref() {
        // EC2's codes for a spot instance stopped (or terminated) to take its capacity back.
        Some("Server.SpotInstanceShutdown" | "Server.SpotInstanceTermination") => {
            Some("spot interruption")
        }
        // Powered off from inside: the idle watcher, or someone's `sudo poweroff`.
        Some("Client.InstanceInitiatedShutdown") => Some("shut down on the dock"),
        _ => None,
    };
    match (i.state.as_str(), why) {
        ("terminated", _) => "gone (terminated)".into(),
        (state @ ("stopped" | "stopping"), Some(why)) => format!("{state} ({why})"),
        (state, _) => state.into(),
    }
}

/// A dock's CONTEXT cell: `current`, `yes` or `-`.
pub(crate) fn context_cell(context: Option<&str>, current_context: &str) -> String {
    match context {
        Some(name) if name == current_context => "current".into(),
        Some(_) => "yes".into(),
        None => "-".into(),
    }
}

/// Where a dock's hourly price comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Price {
    /// dock.cfg's `price_per_hour`.
    Said(f64),
    /// The Price List's on-demand price.
    Listed(f64),
}

/// The price of a dock's hour, if known: dock.cfg's, else the Price List's.
pub(crate) fn price_of(row: &Row, said: &Prices, listed: &HashMap<String, f64>) -> Option<Price> {
    if row.kind == "-" {
        return None;
    }
    said.of(&row.kind)
        .map(Price::Said)
        .or_else(|| listed.get(&row.kind).copied().map(Price::Listed))
}

/// Dollars with as many decimals as an hour's price needs: `3.06`, `0.0104`.
fn dollars(amount: f64) -> String {
    let text = format!("{amount:.4}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let frac = frac.trim_end_matches('0');
    format!("{int}.{frac:0<2}")
}

/// The $/H and COST cells. A spot dock's listed price is on-demand's, what it costs at
/// most (a spot request's maximum price is the on-demand one unless set): marked `≤`.
pub(crate) fn cost_cells(row: &Row, price: Option<Price>, now: i64) -> (String, String) {
    let Some(price) = price else {
        return ("-".into(), "-".into());
    };
    let (amount, mark) = match price {
        Price::Said(p) => (p, ""),
        Price::Listed(p) if row.is_spot() => (p, "≤"),
        Price::Listed(p) => (p, ""),
    };
    let cost = match row.started {
        Some(start) if row.is_running() => {
            let hours = (now - start).max(0) as f64 / 3600.0;
            format!("{mark}{:.2}", amount * hours)
        }
        _ => "-".into(),
    };
    (format!("{mark}{}", dollars(amount)), cost)
}

/// The UPTIME cell.
pub(crate) fn uptime_cell(row: &Row, now: i64) -> String {
    match row.started {
        Some(start) if row.is_running() => human((now - start).max(0) as u64),
        _ => "-".into(),
    }
}

/// The IDLE cell, from a dock's answer (None: not asked).
pub(crate) fn idle_cell(answer: Option<&Answer>) -> String {
    match answer {
        None => "-".into(),
        Some(Answer::NoAnswer) => "?".into(),
        Some(Answer::State(None)) => "none".into(),
        Some(Answer::State(Some(state))) => state.cell(),
    }
}

/// Every line of the listing, aligned: the header, then one line per dock (`cells` in the
/// order of the header, NAME first). The last column is not padded.
pub(crate) fn table(docks: &[Dock], cells: &[Vec<String>], current: Option<&str>) -> String {
    let header: Vec<String> = [
        "NAME",
        "IP",
        "USER",
        "INSTANCE",
        "TYPE",
        "LIFECYCLE",
        "UPTIME",
        "IDLE",
        "$/H",
        "COST",
        "CONTEXT",
        "STATE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut lines = vec![header];
    for (dock, row) in docks.iter().zip(cells) {
        let mark = if current == Some(dock.ip.as_str()) {
            "* "
        } else {
            "  "
        };
        let mut line = vec![format!("{mark}{}", dock.name())];
        line.extend(row.iter().cloned());
        lines.push(line);
    }
    lines[0][0] = format!("  {}", lines[0][0]);
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c == columns - 1 {
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

/// What is left of the listing's time for the docks and the prices: `--timeout` from the
/// start, but at least half a second after AWS has answered.
fn time_left(started: Instant, timeout: Duration) -> Duration {
    (started + timeout)
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(500))
}

fn run(args: &Args) -> Result<i32> {
    // Problems here are warnings: the listing comes first.
    let synced = match crate::dock::hosts::sync("ls-dock") {
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
    // The time to wait for others starts here, after the local work (the sync, which makes
    // the docker contexts of new docks once).
    let started = Instant::now();
    let current = std::env::var("DOCKER_IP").ok();
    let timeout = Duration::from_secs_f64(args.timeout);
    let cfg = dock_cfg::load(&dock_cfg::path()).unwrap_or_else(|e| {
        eprintln!("ls-dock: warning: {e} (its prices are not used)");
        dock_cfg::DockCfg::default()
    });
    // AWS is asked when a dock is an EC2 one by its registration, or when the command line
    // names AWS (--region, --endpoint-url). Then docks registered by IP are looked up too:
    // 2.0.7's register-dock registered EC2 instances that way.
    let asks_aws = docks.iter().any(ec2::is_ec2_registration)
        || args.aws.region.is_some()
        || args.aws.endpoint_url.is_some();
    let listed = asks_aws.then(|| {
        Aws::load(&args.aws).and_then(|aws| {
            let instances = ec2::describe(&aws, vec![])?;
            Ok((aws, instances))
        })
    });
    let rows: Vec<Row> = match &listed {
        Some(Ok((_, instances))) => docks.iter().map(|d| state_of(d, instances)).collect(),
        Some(Err(_)) => docks.iter().map(Row::unknown).collect(),
        None => docks.iter().map(|d| state_of(d, &[])).collect(),
    };
    // The running docks' watchers and the prices of their types, all at once.
    let asked: Vec<usize> = (0..docks.len()).filter(|&i| rows[i].is_running()).collect();
    let unpriced: Vec<String> = rows
        .iter()
        .filter(|r| r.kind != "-" && cfg.price_per_hour.of(&r.kind).is_none())
        .map(|r| r.kind.clone())
        .collect();
    let timeout = time_left(started, timeout);
    let (answers, (listed_prices, price_failure)) = std::thread::scope(|s| {
        let prices = s.spawn(|| match &listed {
            Some(Ok((aws, _))) if !unpriced.is_empty() => {
                pricing::hourly_prices(aws, &aws.region(), &unpriced, timeout)
            }
            _ => (HashMap::new(), None),
        });
        let to_ask: Vec<&Dock> = asked.iter().map(|&i| &docks[i]).collect();
        let answers = idle::read_states(&to_ask, timeout);
        (answers, prices.join().unwrap_or_default())
    });
    if let Some(why) = price_failure {
        eprintln!(
            "ls-dock: warning: no price from AWS's Price List ({why}); set price_per_hour in \
             ~/.docker/dock.cfg, or allow pricing:GetProducts"
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let cells: Vec<Vec<String>> = docks
        .iter()
        .zip(&rows)
        .enumerate()
        .map(|(i, (d, row))| {
            let answer = asked.iter().position(|&a| a == i).map(|n| &answers[n]);
            let (price, cost) =
                cost_cells(row, price_of(row, &cfg.price_per_hour, &listed_prices), now);
            let context = match &synced {
                Some(s) => context_cell(
                    s.contexts.get(&d.dir).map(String::as_str),
                    &s.current_context,
                ),
                None => "?".into(),
            };
            vec![
                d.ip.clone(),
                d.user.clone(),
                row.instance.clone(),
                row.kind.clone(),
                row.lifecycle.clone(),
                uptime_cell(row, now),
                idle_cell(answer),
                price,
                cost,
                context,
                row.state.clone(),
            ]
        })
        .collect();
    print!("{}", table(&docks, &cells, current.as_deref()));
    match listed {
        Some(Err(e)) => Err(e),
        _ => Ok(0),
    }
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("ls-dock", run(&args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dock::idle::{Limit, State};

    #[test]
    fn the_timeout_is_refused_outside_the_range_it_states() {
        for ok in ["0.1", "1.5", "600"] {
            assert!(parse_timeout(ok).is_ok(), "{ok}");
        }
        for out in ["0", "0.01", "0.001", "-1", "600.5", "inf"] {
            assert_eq!(
                parse_timeout(out),
                Err(format!("must be between 0.1 and 600 seconds, not `{out}`")),
                "{out}"
            );
        }
        for nan in ["NaN", "1s", ""] {
            assert!(
                parse_timeout(nan).unwrap_err().contains("not a number"),
                "{nan}"
            );
        }
    }

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
        let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
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
        let contexts = ["gpu", "10.0.0.2", "", "lab", "onprem"]
            .map(|n| context_cell((!n.is_empty()).then_some(n), "lab"));
        let cells: Vec<Vec<String>> = rows
            .iter()
            .zip(contexts)
            .map(|(r, c)| {
                let mut cells = vec!["-".to_string(); 10];
                cells.push(r.state.clone());
                cells[9] = c;
                cells
            })
            .collect();
        let text = table(&docks, &cells, Some("10.0.0.2"));
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

    #[test]
    fn lifecycle_interruption_uptime_and_cost() {
        let now = 1_000_000;
        let spot = InstanceInfo {
            lifecycle: Some("spot".into()),
            launch_time: Some(now - 2 * 3600 - 5 * 60),
            ..instance("i-s", "10.0.0.1", "running")
        };
        let row = state_of(&dock("10.0.0.1", "s", Some("i-s")), &[spot.clone()]);
        assert_eq!(
            (row.lifecycle.as_str(), row.state.as_str()),
            ("spot", "running")
        );
        assert_eq!(uptime_cell(&row, now), "2h05m");
        let listed = HashMap::from([("t3.micro".to_string(), 0.0104)]);
        let none = Prices::default();
        assert_eq!(
            cost_cells(&row, price_of(&row, &none, &listed), now),
            ("≤0.0104".into(), "≤0.02".into()),
            "on-demand's price bounds a spot dock's"
        );
        let said = Prices {
            any: Some(0.5),
            by_type: vec![],
        };
        assert_eq!(
            cost_cells(&row, price_of(&row, &said, &listed), now),
            ("0.50".into(), "1.04".into()),
            "dock.cfg's price is the price"
        );
        // Stopped by an interruption, or from inside, or by stop-dock.
        for (reason, shown) in [
            ("Server.SpotInstanceShutdown", "stopped (spot interruption)"),
            (
                "Client.InstanceInitiatedShutdown",
                "stopped (shut down on the dock)",
            ),
            ("Client.UserInitiatedShutdown", "stopped"),
        ] {
            let stopped = InstanceInfo {
                state: "stopped".into(),
                state_reason: Some(reason.into()),
                ..spot.clone()
            };
            let row = state_of(&dock("10.0.0.1", "s", Some("i-s")), &[stopped]);
            assert_eq!(row.state, shown);
            assert_eq!(uptime_cell(&row, now), "-");
            assert_eq!(cost_cells(&row, price_of(&row, &none, &listed), now).1, "-");
        }
        let on_demand = state_of(
            &dock("10.0.0.2", "o", None),
            &[instance("i-o", "10.0.0.2", "running")],
        );
        assert_eq!(on_demand.lifecycle, "on-demand");
        assert_eq!(
            cost_cells(
                &on_demand,
                price_of(&on_demand, &none, &HashMap::new()),
                now
            ),
            ("-".into(), "-".into())
        );
        let unmanaged = state_of(&dock("192.168.1.5", "x", None), &[]);
        assert_eq!(unmanaged.lifecycle, "-");
        assert_eq!(price_of(&unmanaged, &said, &listed), None);
    }

    #[test]
    fn idle_cells() {
        assert_eq!(idle_cell(None), "-");
        assert_eq!(idle_cell(Some(&Answer::NoAnswer)), "?");
        assert_eq!(idle_cell(Some(&Answer::State(None))), "none");
        let state = State {
            limit: Some(Limit::After(3600)),
            last_active: Some(100),
            active: None,
            now: Some(100 + 12 * 60),
        };
        assert_eq!(idle_cell(Some(&Answer::State(Some(state)))), "12m/1h00m");
    }
}
