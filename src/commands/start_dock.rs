//! `start-dock [NAME]`: start a stopped EC2 dock and wait until it can be used.

use crate::aws::ec2::{self, Goal};
use crate::aws::{Aws, AwsArgs, api_error};
use crate::dock;
use crate::error::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "start-dock",
    version,
    about = "Start a dock's EC2 instance and wait until it runs and passes its status checks",
    after_help = "Examples:\n  start-dock gpu-box\n  start-dock              # the dock this shell is docked to"
)]
pub struct Args {
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
    ec2::wait(&aws, &instance.id, Goal::StatusOk)?;
    println!("Dock {} is up: source dock {}", dock.name(), dock.name());
    Ok(())
}

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    match run(&args) {
        Ok(()) => 0,
        Err(e) => super::fail("start-dock", &e),
    }
}
