//! `dockerutils idle-stop [DOCK] [--set DURATION|off]`: a dock's idle watcher
//! (`crate::dock::idle`): shows its state, or installs it, or changes its limit, over ssh.
//!
//! A limit is only set on an EC2 dock that runs, and whose instance stops (never
//! terminates) when shut down from inside: it is made so first if it is not (a dock created
//! before, or by hand). `off` needs no AWS: it only keeps the watcher from stopping the
//! dock. The change itself is a plan: one ssh to the dock with the watcher's installer on
//! its stdin, the same text as create-dock's user data.

use crate::aws::ec2;
use crate::aws::{Aws, AwsArgs};
use crate::dock::idle::{self, Answer, Limit, human};
use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use crate::plan::{Arg, Explanation, OnFailure, Plan};
use clap::Parser;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "idle-stop",
    version,
    about = "Show or change when an EC2 dock stops itself for being unused (its idle watcher)",
    after_help = "Examples:\n  dockerutils idle-stop gpu              # idle for how long, and the limit\n  dockerutils idle-stop gpu --set 2h\n  dockerutils idle-stop gpu --set off    # never stop it (the watcher keeps recording)\n  dockerutils idle-stop --set 30m        # the dock this shell is docked to\n\n\
The watcher (installed by create-dock, or by --set on a dock made before it existed) stops \
the instance once it has had no ssh session, no running container (except those labelled \
dockerutils.keep-awake=false) and no docker activity for the limit. --set needs sudo without \
a password on the dock (as the ubuntu user of EC2's Ubuntu AMIs has), and makes the \
instance stop, not terminate, when shut down from inside. See docs/ec2.md."
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock [default: the current dock]
    pub name: Option<String>,
    /// The new limit: a duration (30m, 2h, 1h30m, 1d; at least 5m), or off (never stop)
    #[arg(long, value_name = "DURATION|off")]
    pub set: Option<Limit>,
    /// Show what would be done, change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// The ssh that installs (or updates) the watcher on the dock with this limit.
pub(crate) fn plan(dock: &Dock, limit: Limit) -> Plan {
    let mut inv = crate::dock::ssh::script_on_dock(dock, &idle::install_command());
    inv.stdin = Some(Arg::from(idle::installer(limit)));
    inv.stdin_label = Some(
        format!(
            "dockerutils-idle-installer.sh  # the idle watcher (templates/dockerutils-idle) and \
             its systemd timer, limit {limit}"
        )
        .into(),
    );
    inv.on_failure = OnFailure::Explain(Box::new(Explanation {
        code: idle::NO_ROOT,
        error: format!(
            "{} on dock {} cannot become root without a password (sudo -n), which installing \
             the watcher needs",
            dock.user,
            dock.name()
        ),
        hint: "let the dock's user run sudo without a password (EC2's Ubuntu AMIs do for \
               `ubuntu`), or register the dock with such a user (register-dock -u)"
            .into(),
    }));
    let mut plan = Plan::default();
    plan.run(inv);
    plan
}

/// What a dock's watcher says, in a sentence.
pub(crate) fn describe(name: &str, state: &idle::State) -> String {
    let idle = state.idle().map(human).unwrap_or_else(|| "?".into());
    let active = state.active.as_deref().unwrap_or("none");
    match state.limit {
        Some(Limit::Off) => format!(
            "Dock {name}: idle for {idle}; idle stop off (the watcher records, never stops it); \
             active at the last check: {active}"
        ),
        Some(limit) => format!(
            "Dock {name}: idle for {idle}; it stops after {limit} unused; active at the last \
             check: {active}"
        ),
        None => format!("Dock {name}: idle for {idle}; active at the last check: {active}"),
    }
}

/// What to do when a dock did not answer over ssh: for an EC2 dock (known to run, or
/// its state unknown) the way to see why; ssh's own message is above it.
fn no_answer_hint(dock: &Dock) -> String {
    format!(
        "`ssh-dock {}` shows what ssh says (a dock that has just started needs a minute \
         before its sshd answers)",
        dock.name()
    )
}

fn show(dock: &Dock) -> Result<i32> {
    let answers = idle::read_states(&[dock], Duration::from_secs(15));
    match &answers[0] {
        Answer::NoAnswer => Err(Error::Remote(format!(
            "dock {} did not answer over ssh: {}",
            dock.name(),
            no_answer_hint(dock)
        ))),
        Answer::State(None) if !ec2::is_ec2_registration(dock) => {
            println!(
                "Dock {name}: no idle watcher. Idle stop is for EC2 docks: the watcher stops \
                 a dock by powering it off, and only EC2 starts it again (start-dock); {name} \
                 was registered with register-dock, without an EC2 instance. If it is an EC2 \
                 instance, `dockerutils idle-stop {name} --set 1h` finds it by its IP and \
                 installs the watcher; on any other machine `--set off` installs one that only \
                 records its idle time (shown here; ls-dock reads it for EC2 docks only) and \
                 never stops it.",
                name = dock.name()
            );
            Ok(0)
        }
        Answer::State(None) => {
            println!(
                "Dock {}: no idle watcher (made before dockerutils had one); \
                 `dockerutils idle-stop {} --set 1h` installs it",
                dock.name(),
                dock.name()
            );
            Ok(0)
        }
        Answer::State(Some(state)) => {
            println!("{}", describe(dock.name(), state));
            Ok(0)
        }
    }
}

/// The dock's running EC2 instance (one DescribeInstances), or an error that says at once
/// what its state means, before anything waits on ssh: a stopped dock is started first,
/// a terminated one unregistered, and a machine that no instance of the region has the
/// address of is not an EC2 dock.
fn running_instance(aws: &Aws, dock: &Dock) -> Result<ec2::InstanceInfo> {
    let name = dock.name();
    let Some(instance) = ec2::instance_of(aws, dock)? else {
        if let Some(id) = ec2::registered_instance_id(dock) {
            return Err(Error::Aws {
                message: format!(
                    "dock {name} is terminated: its instance {id} no longer exists in region {}",
                    aws.region()
                ),
                hint: Some(format!(
                    "`unregister-dock {name}` removes the registration (`--region` if the dock \
                     lives in another region)"
                )),
            });
        }
        return Err(Error::Usage(format!(
            "dock {name} is not an EC2 dock (registered with register-dock, and no instance of \
             region {} has its IP {}): idle stop is for EC2 docks, as the watcher powers the \
             machine off and only EC2 starts it again (start-dock). `--set off` installs a \
             watcher that only records its idle time (shown by `dockerutils idle-stop`; \
             ls-dock reads it for EC2 docks only) and never stops it; \
             `--region` if the dock is an instance of another region",
            aws.region(),
            dock.ip
        )));
    };
    match instance.state.as_str() {
        "running" => Ok(instance),
        "stopped" | "stopping" => Err(Error::Usage(format!(
            "dock {name} is {}: `start-dock {name}` first (the watcher lives on the dock, read \
             and installed over ssh)",
            instance.state
        ))),
        state => Err(Error::Usage(format!(
            "dock {name} is {state}, not running: try again once it runs (`ls-dock` shows its \
             state)"
        ))),
    }
}

/// A limit is for an EC2 dock that runs and stops when shut down: checked (and the
/// shutdown behaviour made `stop`) before anything is installed.
fn check_instance(args: &Args, aws: &Aws, dock: &Dock) -> Result<()> {
    let instance = running_instance(aws, dock)?;
    let behaviour = ec2::shutdown_behavior(aws, &instance.id)?;
    if behaviour != "stop" {
        if args.dry_run {
            println!(
                "# would set the InstanceInitiatedShutdownBehavior of {} to stop (it is \
                 {behaviour})",
                instance.id
            );
        } else {
            ec2::set_shutdown_behavior_stop(aws, &instance.id)?;
            println!(
                "Set the InstanceInitiatedShutdownBehavior of {} to stop (it was {behaviour}): \
                 shut down from inside, the dock stops with its disk",
                instance.id
            );
        }
    }
    Ok(())
}

/// ssh's exit code when it could not reach the dock (or the connection broke).
const SSH_FAILED: i32 = 255;

fn run(args: &Args) -> Result<i32> {
    let dock = dock::named_or_current(args.name.as_deref())?;
    if args.dry_run && args.set.is_none() {
        return Err(Error::Usage(
            "--dry-run goes with --set: without --set idle-stop changes nothing (it reads the \
             watcher's state over ssh)"
                .into(),
        ));
    }
    // An EC2 dock's state is asked first, with one DescribeInstances: a stopped or
    // terminated dock is said at once, not after ssh has given up on it. A dock registered
    // without an instance (register-dock) needs no AWS to read or to switch off.
    let ec2_dock = ec2::is_ec2_registration(&dock);
    match args.set {
        Some(Limit::Off) | None if !ec2_dock => {}
        Some(Limit::Off) | None => {
            running_instance(&Aws::load(&args.aws)?, &dock)?;
        }
        Some(_) => check_instance(args, &Aws::load(&args.aws)?, &dock)?,
    }
    let Some(limit) = args.set else {
        return show(&dock);
    };
    let code = super::finish("idle-stop", args.dry_run, Ok(plan(&dock, limit)));
    if code == SSH_FAILED {
        eprintln!(
            "idle-stop: hint: dock {} did not answer over ssh: {}",
            dock.name(),
            no_answer_hint(&dock)
        );
    }
    if code == 0 && !args.dry_run {
        match limit {
            Limit::Off => println!(
                "Dock {}: idle stop off (its watcher keeps recording for ls-dock)",
                dock.name()
            ),
            limit => println!(
                "Dock {} stops after {limit} with no ssh session, running container or docker \
                 activity",
                dock.name()
            ),
        }
    }
    Ok(code)
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("idle-stop", run(&args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::quote;

    #[test]
    fn the_plan_is_one_ssh_with_the_installer_on_stdin() {
        let dock = Dock {
            user: "ubuntu".into(),
            moniker: "gpu".into(),
            hostname: "10.0.0.5".into(),
            ip: "10.0.0.5".into(),
            extra: vec![],
            dir: "/h/.docker/10.0.0.5".into(),
        };
        let plan = plan(&dock, Limit::After(7200));
        let invs: Vec<_> = plan.invocations().collect();
        assert_eq!(invs.len(), 1);
        let inv = invs[0];
        assert_eq!(inv.program, "ssh");
        assert_eq!(
            inv.stdin.as_ref().map(|s| s.value.clone()),
            Some(idle::installer(Limit::After(7200)))
        );
        let shown = inv.display();
        let (line, label) = shown.split_once(" < ").unwrap();
        let words = shlex::split(line).unwrap();
        // What runs there: `/bin/sh -c INSTALL`, each word quoted for the dock's shell.
        assert_eq!(
            words[words.len() - 4..],
            [
                "ubuntu@10.0.0.5".to_string(),
                "/bin/sh".to_string(),
                "-c".to_string(),
                quote(&idle::install_command())
            ],
            "{shown}"
        );
        let on_dock = inv.on_dock.as_ref().expect("run through the SSH layer");
        assert_eq!(
            on_dock.words,
            [
                "/bin/sh".to_string(),
                "-c".to_string(),
                idle::install_command()
            ]
        );
        assert!(label.ends_with("limit 2h00m"), "{shown}");
        assert!(
            !shown.contains("#!/bin/sh"),
            "the script is not printed: {shown}"
        );
    }
}
