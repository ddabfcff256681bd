//! `destroy-dock NAME`: terminate a dock's EC2 instance and unregister it (a spot dock's
//! persistent request is cancelled first, or it would launch the dock again).

use crate::aws::ec2::{self, Goal, InstanceInfo};
use crate::aws::{Aws, AwsArgs, api_error};
use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "destroy-dock",
    version,
    about = "Terminate a dock's EC2 instance (asks first; lifts termination protection) and unregister it",
    after_help = "Examples:\n  destroy-dock gpu-box\n  destroy-dock -y 10.0.3.7\n  destroy-dock i-0abc123def4567890   # an instance create-dock made but did not register"
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock, or the id of an unregistered instance (i-…)
    pub name: String,
    /// Do not ask for confirmation (needed when not at a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

fn run(args: &Args) -> Result<i32> {
    match dock::find(&args.name) {
        Ok(dock) => {
            let aws = Aws::load(&args.aws)?;
            let instance = ec2::instance_of(&aws, &dock)?;
            finish(args, &aws, Some(dock), instance)
        }
        Err(e) if !args.name.starts_with("i-") => Err(e),
        Err(_) => {
            let aws = Aws::load(&args.aws)?;
            let found = ec2::describe(&aws, vec![ec2::filter("instance-id", [&args.name])])?
                .into_iter()
                .find(|i| !i.is_gone())
                .ok_or_else(|| Error::Aws {
                    message: format!(
                        "no dock is registered as `{}`, and no live instance has that id in \
                         region {}",
                        args.name,
                        aws.region()
                    ),
                    hint: Some("ls-dock lists the registered docks".into()),
                })?;
            finish(args, &aws, None, Some(found))
        }
    }
}

fn finish(
    args: &Args,
    aws: &Aws,
    dock: Option<Dock>,
    instance: Option<InstanceInfo>,
) -> Result<i32> {
    let label = match (&dock, &instance) {
        (Some(d), Some(i)) => format!("dock {} ({}, {}, {})", d.name(), d.ip, i.id, i.state),
        (Some(d), None) => format!("dock {} ({})", d.name(), d.ip),
        (None, Some(i)) => format!(
            "instance {} ({}, {})",
            i.id,
            i.name.as_deref().unwrap_or("no Name tag"),
            i.state
        ),
        (None, None) => unreachable!("run() returns early"),
    };
    let Some(instance) = instance else {
        let dock = dock.expect("label has a dock");
        if ec2::registered_instance_id(&dock).is_none() {
            // Not a dock create-dock made: a Service Catalog dock (terminated there), or a
            // server registered with register-dock, which is refused, not unregistered as
            // if its instance were gone. Only a registered instance id that no longer
            // exists means the dock is gone.
            ec2::require_instance(aws, &dock)?;
        }
        println!(
            "No live EC2 instance behind {label} in region {}: removing the registration only",
            aws.region()
        );
        dock::unregister(&dock)?;
        println!("Removed dock {}", dock.name());
        crate::dock::hosts::after_change("destroy-dock", None);
        return Ok(0);
    };
    let spot_request = if instance.is_spot() {
        ec2::spot_request_of(aws, &instance)?
    } else {
        None
    };
    let question = match &spot_request {
        Some(r) => {
            format!("Terminate {label}? Its disk is deleted, and its spot request {r} cancelled.")
        }
        None => format!("Terminate {label}? Its disk is deleted."),
    };
    if !super::confirm(&question, args.yes)? {
        return super::canceled();
    }
    // A persistent spot request would launch the dock again once its instance is gone.
    if let Some(request) = &spot_request {
        ec2::cancel_spot_request(aws, request)?;
        println!("Cancelled spot request {request}");
    }
    // Spot instances have no termination protection to lift.
    if !instance.is_spot() {
        ec2::set_termination_protection(aws, &instance.id, false)?;
    }
    aws.block_on(ec2::interruptible(
        aws.ec2()
            .terminate_instances()
            .instance_ids(&instance.id)
            .send(),
    ))?
    .map_err(|e| api_error("TerminateInstances", e))?;
    ec2::wait(aws, &instance.id, Goal::Terminated)?;
    if let Some(dock) = dock {
        dock::unregister(&dock)?;
        println!("Destroyed dock {} ({})", dock.name(), instance.id);
        crate::dock::hosts::after_change("destroy-dock", None);
    } else {
        println!("Terminated instance {}", instance.id);
    }
    Ok(0)
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("destroy-dock", run(&args))
}
