//! The idle watcher of EC2 docks: `templates/dockerutils-idle`, a POSIX sh script that a
//! systemd timer on the dock runs every minute; it powers the instance off (which stops
//! it: a dock's InstanceInitiatedShutdownBehavior is `stop`) once nothing has used it for
//! the limit. The one text is built into this binary and goes to the dock two ways:
//! in create-dock's user data (cloud-init runs it at first boot) and on the stdin of an
//! ssh for `dockerutils idle-stop DOCK --set`; both run the same [`installer`].
//!
//! The watcher's state (`/var/lib/dockerutils-idle/state`, `key=value` lines) is what
//! ls-dock and idle-stop read over the dock's shared SSH connection: [`read_states`] asks
//! every dock at once and gives up on those that do not answer in time.
//!
//! `DOCKERUTILS_IDLE_ROOT` (in our environment) names the directory the watcher lives
//! under on the dock instead of `/`: the test dock's user is not root.

use crate::dock::Dock;
use crate::dock::session::Mux;
use crate::error::{Error, Result};
use crate::plan::quote;
use std::time::{Duration, Instant};

/// The watcher, as installed on docks at `/usr/local/sbin/dockerutils-idle`.
pub(crate) const WATCHER: &str = include_str!("../../templates/dockerutils-idle");

/// The watcher's state file on the dock (under [`root`]).
pub(crate) const STATE_FILE: &str = "/var/lib/dockerutils-idle/state";

/// Ends the watcher's text in the installer's here-document.
const END_MARK: &str = "DOCKERUTILS_IDLE_EOF";

/// The shortest limit: after start-dock the first check comes two minutes after boot,
/// and a shorter limit would stop a dock before one can reach it.
pub(crate) const MIN_LIMIT: u64 = 5 * 60;

/// The idle-stop limit of create-dock without `--idle-stop` and without `idle_stop=` in
/// dock.cfg (docs/ec2.md argues it).
pub(crate) const DEFAULT_LIMIT: Limit = Limit::After(60 * 60);

/// How long a dock may stay idle before its watcher stops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Never stop (the watcher still records, for ls-dock).
    Off,
    /// Stop after this many idle seconds.
    After(u64),
}

/// How clap reads a `--idle-stop`/`--set` value: [`Limit::parse`], its error as text.
impl std::str::FromStr for Limit {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Limit, String> {
        Limit::parse(text).map_err(|e| e.to_string())
    }
}

impl Limit {
    /// `off`, or a duration: `90m`, `2h`, `1h30m`, `1d`, `3600s` (at least [`MIN_LIMIT`]).
    pub fn parse(text: &str) -> Result<Limit> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Limit::Off);
        }
        let secs = parse_duration(text).ok_or_else(|| {
            Error::Usage(format!(
                "`{}` is not an idle limit: give a duration such as 30m, 2h, 1h30m or 1d, or off",
                text.escape_debug()
            ))
        })?;
        if secs < MIN_LIMIT {
            return Err(Error::Usage(format!(
                "an idle limit of {} is too short: at least {} (a dock is checked two minutes \
                 after it boots; a shorter limit would stop it before you can reach it)",
                exact(secs),
                human(MIN_LIMIT)
            )));
        }
        Ok(Limit::After(secs))
    }

    /// What the watcher takes: seconds, or `off`.
    pub fn script_arg(self) -> String {
        match self {
            Limit::Off => "off".into(),
            Limit::After(secs) => secs.to_string(),
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Off => f.write_str("off"),
            Limit::After(secs) => f.write_str(&human(*secs)),
        }
    }
}

/// `1h30m` and the like (units d, h, m, s, at least one) in seconds.
fn parse_duration(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
        any = true;
    }
    (any && number.is_empty()).then_some(total)
}

/// A duration as people read it: `45s`, `12m`, `3h05m`, `2d04h`.
pub(crate) fn human(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h{:02}m", secs / 3_600, secs % 3_600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3_600),
    }
}

/// A duration to the second, every unit that is not zero (`1d1h30m`, `2h`, `90s`): for
/// what the user confirms, where [`human`]'s rounding would hide what was asked.
pub(crate) fn exact(secs: u64) -> String {
    let mut out = String::new();
    let mut left = secs;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if left >= size {
            out.push_str(&format!("{}{unit}", left / size));
            left %= size;
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

/// The shell script that installs (or updates) the watcher with this limit and starts its
/// timer: create-dock's user data, and what `idle-stop --set` sends to the dock.
pub fn installer(limit: Limit) -> String {
    format!(
        "#!/bin/sh\n\
         # dockerutils: the idle watcher of this dock (docs/ec2.md; `dockerutils idle-stop`).\n\
         set -e\n\
         bin=\"${{DOCKERUTILS_IDLE_ROOT:-}}/usr/local/sbin\"\n\
         mkdir -p \"$bin\"\n\
         cat >\"$bin/dockerutils-idle.new\" <<'{END_MARK}'\n\
         {WATCHER}{END_MARK}\n\
         chmod 755 \"$bin/dockerutils-idle.new\"\n\
         mv -f \"$bin/dockerutils-idle.new\" \"$bin/dockerutils-idle\"\n\
         exec \"$bin/dockerutils-idle\" install {}\n",
        limit.script_arg()
    )
}

/// `DOCKERUTILS_IDLE_ROOT`: where the watcher lives on docks instead of `/` (a test dock
/// whose user is not root). Empty for `/`.
pub(crate) fn root() -> String {
    std::env::var("DOCKERUTILS_IDLE_ROOT")
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string()
}

/// The script (`/bin/sh -c` on the dock) that installs the watcher from stdin: as root
/// (through `sudo -n` for a user that is not; exit 3 when that needs a password), or
/// under [`root`].
pub(crate) fn install_command() -> String {
    match root().as_str() {
        "" => "if [ \"$(id -u)\" -ne 0 ]; then sudo -n true 2>/dev/null || exit 3; \
               exec sudo -n sh -s; fi; exec sh -s"
            .to_string(),
        dir => format!("DOCKERUTILS_IDLE_ROOT={} exec sh -s", quote(dir)),
    }
}

/// The exit code of [`install_command`] when the dock's user cannot become root.
pub(crate) const NO_ROOT: i32 = 3;

/// The remote command that prints the state and the dock's clock (`now=`). Plain words:
/// the dock user's login shell runs it, whatever shell that is.
pub(crate) fn read_command() -> String {
    format!(
        "cat {}; date +now=%s",
        quote(&format!("{}{STATE_FILE}", root()))
    )
}

/// The watcher's state on a dock, as its state file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub limit: Option<Limit>,
    /// The last time (dock clock, epoch seconds) something was active.
    pub last_active: Option<u64>,
    /// What the last check found active (`ssh:1 containers:2`, `none`).
    pub active: Option<String>,
    /// The dock's clock when it was read.
    pub now: Option<u64>,
}

impl State {
    /// Reads the `key=value` lines of the state file and `now=`; `None` when there is no
    /// state (no watcher on the dock).
    pub(crate) fn parse(text: &str) -> Option<State> {
        let mut state = State::default();
        let mut any = false;
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "limit" => {
                    any = true;
                    state.limit = match value {
                        "off" => Some(Limit::Off),
                        v => v.parse().ok().map(Limit::After),
                    };
                }
                "last_active" => {
                    any = true;
                    state.last_active = value.parse().ok();
                }
                // Printed here: a file on the dock must not drive our terminal.
                "active" => {
                    state.active = Some(value.chars().filter(|c| !c.is_control()).collect())
                }
                "now" => state.now = value.parse().ok(),
                _ => {}
            }
        }
        any.then_some(state)
    }

    /// Seconds since the last activity, by the dock's clock.
    pub(crate) fn idle(&self) -> Option<u64> {
        Some(self.now?.saturating_sub(self.last_active?))
    }

    /// The IDLE cell of ls-dock: `12m/1h00m` (idle, then the limit), `12m/off`.
    pub(crate) fn cell(&self) -> String {
        let idle = self.idle().map(human).unwrap_or_else(|| "?".into());
        match self.limit {
            Some(limit) => format!("{idle}/{limit}"),
            None => idle,
        }
    }
}

/// What a dock said when asked for its watcher's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// It answered: its state, or none (no watcher there).
    State(Option<State>),
    /// No answer in time, or ssh failed (unreachable, key refused).
    NoAnswer,
}

/// Asks every dock at once for its watcher's state, over its shared SSH connection
/// (made if there is none, and kept as every ssh to a dock keeps it), through the SSH
/// layer (`dock::session`); what has not answered by `timeout` is [`Answer::NoAnswer`]:
/// a master still being started is killed at the limit (its ssh's process group), a
/// command on a channel is given up on (it ends by itself: `cat` and `date`).
pub(crate) fn read_states(docks: &[&Dock], timeout: Duration) -> Vec<Answer> {
    let started = Instant::now();
    // ssh's own connect timeout, in whole seconds: not shorter than ours, which decides.
    let connect = (timeout.as_secs_f64().ceil() as u64).max(1);
    let command = read_command();
    let (send, receive) = std::sync::mpsc::channel();
    for (i, dock) in docks.iter().enumerate() {
        // ssh takes an option's first value: these come before the dock's.
        let mut options: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("ConnectTimeout={connect}"),
        ]
        .map(String::from)
        .to_vec();
        options.extend(dock.ssh_options());
        let (dest, name) = (dock.destination(), dock.name().to_string());
        let (send, command) = (send.clone(), command.clone());
        // A thread each: a dock that does not answer must never hold up the others.
        std::thread::spawn(move || {
            let answer = Mux::connect(&options, &dest, &name, Some(timeout), false)
                .and_then(|mux| {
                    let left = timeout.saturating_sub(started.elapsed());
                    mux.script_output_within(&command, left)
                })
                .ok()
                // `date` runs last: exit 0 with `now=` is an answer, with or without state.
                .filter(|ran| ran.success() && ran.stdout.contains("now="))
                .map_or(Answer::NoAnswer, |ran| {
                    Answer::State(State::parse(&ran.stdout))
                });
            let _ = send.send((i, answer));
        });
    }
    drop(send);
    let mut answers = vec![Answer::NoAnswer; docks.len()];
    let mut left = docks.len();
    while left > 0 {
        let wait = timeout.saturating_sub(started.elapsed());
        match receive.recv_timeout(wait) {
            Ok((i, answer)) => {
                answers[i] = answer;
                left -= 1;
            }
            Err(_) => break,
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_durations_keep_every_unit() {
        assert_eq!(exact(86_400 + 3_600 + 1_800), "1d1h30m");
        assert_eq!(exact(7_200), "2h");
        assert_eq!(exact(300), "5m");
        assert_eq!(exact(3_661), "1h1m1s");
        assert_eq!(exact(2 * 86_400), "2d");
    }

    #[test]
    fn limits_parse_and_show_as_people_write_them() {
        assert_eq!(Limit::parse("off").unwrap(), Limit::Off);
        assert_eq!(Limit::parse("90m").unwrap(), Limit::After(5400));
        assert_eq!(Limit::parse("1h30m").unwrap(), Limit::After(5400));
        assert_eq!(Limit::parse("2h").unwrap(), Limit::After(7200));
        assert_eq!(Limit::parse("1d").unwrap(), Limit::After(86_400));
        assert_eq!(Limit::After(5400).to_string(), "1h30m");
        assert_eq!(Limit::After(5400).script_arg(), "5400");
        for bad in [
            "",
            "60",
            "h",
            "2x",
            "1h 30m",
            "-5m",
            "$(reboot)",
            "99999999999999999999d",
        ] {
            assert!(Limit::parse(bad).is_err(), "{bad:?}");
        }
        let short = Limit::parse("2m").unwrap_err().to_string();
        assert!(
            short.contains("too short") && short.contains("5m"),
            "{short}"
        );
        // Said as given, not rounded: 90s is not "1m".
        let short = Limit::parse("90s").unwrap_err().to_string();
        assert!(short.contains("of 1m30s is too short"), "{short}");
        assert_eq!(human(59), "59s");
        assert_eq!(human(3_660), "1h01m");
        assert_eq!(human(90_000), "1d01h");
    }

    #[test]
    fn the_installer_carries_the_watcher_whole() {
        assert!(
            !WATCHER.lines().any(|l| l == END_MARK),
            "the watcher must not end the installer's here-document early"
        );
        let text = installer(Limit::After(3600));
        assert!(
            text.starts_with("#!/bin/sh\n"),
            "cloud-init runs it as a script"
        );
        assert!(text.contains(WATCHER));
        assert!(text.ends_with("install 3600\n"), "{text}");
        assert!(installer(Limit::Off).ends_with("install off\n"));
        // EC2 takes at most 16 KB of user data.
        assert!(text.len() < 12 * 1024, "{} bytes", text.len());
    }

    #[test]
    fn the_state_file_gives_idle_time_and_limit() {
        let state =
            State::parse("limit=3600\nlast_active=1000\nlast_check=1500\nactive=none\nnow=1720\n")
                .unwrap();
        assert_eq!(state.idle(), Some(720));
        assert_eq!(state.cell(), "12m/1h00m");
        let off = State::parse("limit=off\nlast_active=1000\nnow=1030\n").unwrap();
        assert_eq!(off.cell(), "30s/off");
        assert_eq!(State::parse("now=1720\n"), None, "no watcher");
        let odd = State::parse("limit=60\nactive=ssh:1\u{1b}]0;owned\u{7}\n").unwrap();
        assert_eq!(odd.active.as_deref(), Some("ssh:1]0;owned"));
    }
}
