//! `register-dock IP [MONIKER]`: add a dock to the registry (`~/.docker/<ip>/`).

use crate::dock::{self, Dock};
use crate::error::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "register-dock",
    version,
    about = "Register a remote Docker host (a dock) by IP or hostname, with an optional moniker",
    after_help = "Examples:\n  register-dock 10.93.133.6 gpu-box\n  register-dock -u admin build.example.com builder\n  register-dock -i ~/.ssh/lab-key 10.0.0.8 lab\n  DOCK_USER=ec2-user register-dock 10.0.0.7\n\nThen: source dock gpu-box, or (after `dockerutils ssh-config --install`) ssh gpu-box, docker --context gpu-box ps"
)]
pub struct Args {
    /// IP address or hostname of the dock
    pub ip: String,
    /// A short name to refer to the dock by
    pub moniker: Option<String>,
    /// The ssh user on the dock [default: $DOCK_USER, else ubuntu]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Where sync-up puts projects on the dock [default: /data/workspaces]
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<String>,
    /// The private key for ssh to the dock (stored as DOCK_IDENTITY) [default: ssh's own]
    #[arg(short = 'i', long, value_name = "FILE")]
    pub identity: Option<std::path::PathBuf>,
}

pub fn run(args: &Args) -> Result<Dock> {
    let user = args
        .user
        .clone()
        .or_else(|| std::env::var("DOCK_USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "ubuntu".into());
    let dir = dock::registry_dir().join(&args.ip);
    let mut extra = vec![];
    if let Some(ws) = &args.workspace {
        extra.push(("DOCK_WORKSPACE".to_string(), ws.clone()));
    }
    if let Some(key) = &args.identity {
        extra.push((
            "DOCK_IDENTITY".to_string(),
            crate::ssh_config::identity(key)?,
        ));
    }
    let dock = Dock {
        user,
        moniker: args.moniker.clone().unwrap_or_else(|| "none".into()),
        hostname: args.ip.clone(),
        ip: args.ip.clone(),
        extra,
        dir,
    };
    crate::ssh_config::check_new(&dock)?;
    dock::register(&dock)?;
    // A new machine at the same address has a new host key: learn it afresh.
    let _ = std::fs::remove_file(dock.known_hosts());
    Ok(dock)
}

pub fn main(argv: Vec<std::ffi::OsString>) -> i32 {
    let args = Args::parse_from(argv);
    match run(&args) {
        Ok(dock) => {
            println!(
                "Registered dock {} ({}) in {}",
                dock.name(),
                dock.destination(),
                dock.dir.join(dock::CONFIG_FILE).display()
            );
            super::ssh_config::after_change("register-dock", Some(&dock));
            0
        }
        Err(e) => super::fail("register-dock", &e),
    }
}
