//! `start-dock [NAME]`: start a stopped EC2 dock and wait until it can be used. A dock
//! registered by a public IP that changed is registered again at the new one, and its ssh
//! config block and docker context follow.

use crate::aws::ec2::{self, Goal, InstanceInfo};
use crate::aws::{Aws, AwsArgs, api_error};
use crate::dock::{self, Dock};
use crate::error::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "start-dock",
    version,
    about = "Start a dock's EC2 instance and wait until it runs and passes its status checks",
    after_help = "Examples:\n  start-dock gpu-box\n  start-dock              # the dock this shell is docked to"
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock [default: the current dock]
    pub name: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

fn run(args: &Args) -> Result<()> {
    let dock = dock::named_or_current(args.name.as_deref())?;
    let aws = Aws::load(&args.aws)?;
    let instance = ec2::require_instance(&aws, &dock)?;
    if instance.state != "running" {
        println!(
            "Starting {} ({}, {})",
            dock.name(),
            instance.id,
            instance.state
        );
        aws.block_on(ec2::interruptible(
            aws.ec2()
                .start_instances()
                .instance_ids(&instance.id)
                .send(),
        ))?
        .map_err(|e| api_error("StartInstances", e))?;
    }
    let running = ec2::wait(&aws, &instance.id, Goal::StatusOk)?;
    let dock = match new_address(&dock, &instance, &running) {
        Some(ip) => {
            let moved = dock::readdress(&dock, &ip)?;
            println!(
                "Dock {} has a new address: {ip} (was {}); registration moved to {}",
                dock.name(),
                dock.ip,
                moved.dir.display()
            );
            moved
        }
        None => dock,
    };
    println!("Dock {} is up: source dock {}", dock.name(), dock.name());
    crate::dock::hosts::after_change("start-dock", None);
    Ok(())
}

/// The dock's address now, when it is not the registered one: the instance's public IP
/// for a dock registered by a public IP (one that was not its private IP before it
/// started; a stopped instance has no public IP), else its private IP.
pub(crate) fn new_address(
    dock: &Dock,
    before: &InstanceInfo,
    running: &InstanceInfo,
) -> Option<String> {
    let now = [&running.private_ip, &running.public_ip];
    if now.iter().any(|ip| ip.as_deref() == Some(dock.ip.as_str())) {
        return None;
    }
    let by_public = before.private_ip.as_deref() != Some(dock.ip.as_str());
    if by_public {
        running.public_ip.clone()
    } else {
        running.private_ip.clone()
    }
}

pub(crate) fn main(args: Args) -> i32 {
    match run(&args) {
        Ok(()) => 0,
        Err(e) => super::fail("start-dock", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(private: Option<&str>, public: Option<&str>) -> InstanceInfo {
        InstanceInfo {
            id: "i-1".into(),
            state: "running".into(),
            instance_type: "t3.micro".into(),
            private_ip: private.map(str::to_string),
            public_ip: public.map(str::to_string),
            name: None,
            ..InstanceInfo::default()
        }
    }

    fn dock(ip: &str) -> Dock {
        Dock {
            user: "ubuntu".into(),
            moniker: "gpu".into(),
            hostname: ip.into(),
            ip: ip.into(),
            extra: vec![],
            dir: format!("/h/.docker/{ip}").into(),
        }
    }

    #[test]
    fn a_public_address_that_changed_is_followed() {
        let stopped = info(Some("10.0.0.5"), None);
        // Registered by its private IP, which stays.
        let same = info(Some("10.0.0.5"), Some("3.3.3.3"));
        assert_eq!(new_address(&dock("10.0.0.5"), &stopped, &same), None);
        // Registered by its public IP, which changed on start.
        assert_eq!(
            new_address(&dock("1.1.1.1"), &stopped, &same).as_deref(),
            Some("3.3.3.3")
        );
        assert_eq!(new_address(&dock("3.3.3.3"), &stopped, &same), None);
        // No public IP any more: nothing to follow.
        let private_only = info(Some("10.0.0.5"), None);
        assert_eq!(new_address(&dock("1.1.1.1"), &stopped, &private_only), None);
    }
}
