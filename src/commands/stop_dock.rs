//! `stop-dock [NAME]`: stop a dock's EC2 instance (it keeps its disk; start-dock again).

use crate::aws::ec2::{self, Goal};
use crate::aws::{Aws, AwsArgs, api_error};
use crate::dock;
use crate::error::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "stop-dock",
    version,
    about = "Stop a dock's EC2 instance (asks first) and wait until it is stopped",
    after_help = "Examples:\n  stop-dock gpu-box\n  stop-dock -y            # the current dock, no question"
)]
pub(crate) struct Args {
    /// Moniker or IP of the dock [default: the current dock]
    pub name: Option<String>,
    /// Do not ask for confirmation (needed when not at a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

fn run(args: &Args) -> Result<i32> {
    let dock = dock::named_or_current(args.name.as_deref())?;
    let aws = Aws::load(&args.aws)?;
    let instance = ec2::require_instance(&aws, &dock)?;
    if instance.state == "stopped" {
        println!("Dock {} ({}) is already stopped", dock.name(), instance.id);
        return Ok(0);
    }
    let question = format!(
        "Stop dock {} ({}, {}, {})?",
        dock.name(),
        dock.ip,
        instance.id,
        instance.state
    );
    if !super::confirm(&question, args.yes)? {
        return super::canceled();
    }
    aws.block_on(ec2::interruptible(
        aws.ec2().stop_instances().instance_ids(&instance.id).send(),
    ))?
    .map_err(|e| api_error("StopInstances", e))?;
    ec2::wait(&aws, &instance.id, Goal::Stopped)?;
    println!(
        "Dock {} is stopped: start-dock {} starts it again",
        dock.name(),
        dock.name()
    );
    Ok(0)
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("stop-dock", run(&args))
}
