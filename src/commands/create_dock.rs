//! `create-dock`: launch an EC2 instance as a dock and register it.
//!
//! The plan is a [`Launch`]: every setting of the RunInstances call, resolved from the
//! flags, `~/.docker/dock.cfg` and the AMI lookup, shown before anything is created.
//! Every dock stops, never terminates, when shut down from inside, and carries the idle
//! watcher (`crate::dock::idle`) in its user data; `--spot` makes it a persistent spot request
//! whose interruption stops it too.

use crate::aws::ec2::{self, Goal};
use crate::aws::{Aws, AwsArgs, api_error};
use crate::dock::cfg::{self as dock_cfg, DockCfg};
use crate::dock::idle::{self, Limit};
use crate::dock::{self, Dock};
use crate::error::{Error, Result};
use aws_sdk_ec2::types::{
    BlockDeviceMapping, EbsBlockDevice, IamInstanceProfileSpecification,
    InstanceInterruptionBehavior, InstanceMarketOptionsRequest, InstanceType, MarketType,
    ResourceType, ShutdownBehavior, SpotInstanceType, SpotMarketOptions, Tag, TagSpecification,
    VolumeType,
};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "create-dock",
    version,
    about = "Launch an EC2 instance as a dock (defaults from ~/.docker/dock.cfg) and register it",
    after_help = "Examples:\n  create-dock -m gpu -i p3.2xlarge\n  create-dock -m scratch -a ami-0abc1234 -v 200 -y\n  create-dock -m web --public          # register the public IP\n  create-dock -m cheap --spot --idle-stop 30m\n\n\
~/.docker/dock.cfg (all optional):\n  key_name=\"my-key\"  security_group_ids=\"sg-1 sg-2\"  iam_instance_profile=\"role\"\n  subnet_id=\"subnet-1\"  tags=\"team=ml\"  ami_id=\"ami-…\" or ami_name=\"NAME-TAG\"\n  instance_type=\"c5.xlarge\"  volume_size=100  volume_type=\"gp3\"  user=\"ubuntu\"\n  idle_stop=\"1h\"  spot=true  price_per_hour=\"c5.xlarge=0.17\" (for ls-dock)\n\n\
Every dock stops (never terminates) when shut down from inside, and carries a watcher that \
stops it once idle for the limit: no ssh session, no running container, no docker activity \
(docs/ec2.md)."
)]
pub(crate) struct Args {
    /// Moniker of the new dock (as 2.0.7's positional dock name; same as -m)
    #[arg(value_name = "MONIKER")]
    pub dock: Option<String>,
    /// The instance's Name tag [default: <user>-<moniker>, or <user>-dock]
    #[arg(short = 'n', long, value_parser = parse_name)]
    pub name: Option<String>,
    /// Moniker to register the dock under (shown in the prompt when docked)
    #[arg(short = 'm', long)]
    pub moniker: Option<String>,
    /// Instance type [default: dock.cfg's instance_type, else c5.xlarge]
    #[arg(short = 'i', long = "instance-type", alias = "instance_type")]
    pub instance_type: Option<String>,
    /// AMI id [default: dock.cfg's ami_id, else the AMI whose Name tag is dock.cfg's ami_name]
    #[arg(short = 'a', long)]
    pub ami: Option<String>,
    /// Root volume size in GB [default: dock.cfg's volume_size, else 100]
    #[arg(short = 'v', long = "volume-size", alias = "volume_size")]
    pub volume_size: Option<i32>,
    /// Do not register the dock (print its address only)
    #[arg(short = 's', long = "skip-registration")]
    pub skip_registration: bool,
    /// Do not ask for confirmation (needed when not at a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Register the public IP instead of the private one
    #[arg(long)]
    pub public: bool,
    /// ssh user on the dock [default: dock.cfg's user, $DOCK_USER, else ubuntu]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Stop the dock after this long unused (30m, 2h, 1h30m, 1d; at least 5m; off: never) [default: dock.cfg's idle_stop, else 1h]
    #[arg(long, value_name = "DURATION|off")]
    pub idle_stop: Option<Limit>,
    /// A persistent spot instance (cheaper; AWS may stop it when it needs the capacity)
    /// [default: dock.cfg's spot, else on-demand]
    #[arg(long, conflicts_with = "on_demand")]
    pub spot: bool,
    /// An on-demand instance, whatever dock.cfg's spot says
    #[arg(long)]
    pub on_demand: bool,
    /// Show what would be launched, create nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub aws: AwsArgs,
}

/// A Name tag: what EC2 takes (at most 256 characters), without control characters,
/// which the summary, the console and ls-dock would print as they are.
fn parse_name(text: &str) -> std::result::Result<String, String> {
    if text.trim().is_empty() {
        return Err("the name is empty".into());
    }
    if text.chars().any(char::is_control) {
        return Err("a name cannot hold control characters (a newline, tab, escape…)".into());
    }
    if text.chars().count() > 256 {
        return Err("a name is at most 256 characters (EC2's limit for a tag value)".into());
    }
    Ok(text.to_string())
}

/// Everything the RunInstances call will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    pub name: String,
    pub moniker: Option<String>,
    pub instance_type: String,
    pub ami: String,
    /// How the AMI was chosen ("-a", "dock.cfg ami_id", "Name tag X").
    pub ami_source: String,
    pub key_name: Option<String>,
    pub security_group_ids: Vec<String>,
    pub subnet_id: Option<String>,
    pub iam_instance_profile: Option<String>,
    pub volume_size: i32,
    pub volume_type: String,
    pub device_name: String,
    pub tags: Vec<(String, String)>,
    pub user: String,
    /// A persistent spot request that stops (not terminates) the instance when interrupted.
    pub spot: bool,
    /// The watcher's limit, in the user data.
    pub idle_stop: Limit,
}

impl Launch {
    pub(crate) fn display(&self, region: &str) -> String {
        let mut rows: Vec<(&str, String)> = vec![
            ("Name", self.name.clone()),
            (
                "Moniker",
                self.moniker.clone().unwrap_or_else(|| "(its IP)".into()),
            ),
            ("Region", region.into()),
            ("Instance type", self.instance_type.clone()),
            ("AMI", format!("{} ({})", self.ami, self.ami_source)),
            (
                "Volume",
                format!(
                    "{} GB {} on {}",
                    self.volume_size, self.volume_type, self.device_name
                ),
            ),
        ];
        let opt = |v: &Option<String>, none: &str| v.clone().unwrap_or_else(|| none.into());
        rows.push((
            "Key pair",
            opt(&self.key_name, "(none: set key_name in dock.cfg)"),
        ));
        rows.push((
            "Security groups",
            if self.security_group_ids.is_empty() {
                "(the VPC's default)".into()
            } else {
                self.security_group_ids.join(" ")
            },
        ));
        rows.push(("Subnet", opt(&self.subnet_id, "(a default subnet)")));
        rows.push((
            "Instance profile",
            opt(&self.iam_instance_profile, "(none)"),
        ));
        rows.push((
            "Tags",
            self.tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        ));
        rows.push(("ssh user", self.user.clone()));
        rows.push((
            "Market",
            if self.spot {
                "spot (a persistent request: an interruption stops the dock, start-dock \
                 brings it back)"
                    .into()
            } else {
                "on-demand".into()
            },
        ));
        rows.push(("Shut down from inside", "stop (never terminate)".into()));
        rows.push((
            "Idle stop",
            match self.idle_stop {
                Limit::Off => "off (the watcher in the user data only records)".into(),
                // Exactly as given: the prompt is what the user confirms.
                Limit::After(secs) => format!(
                    "after {} with no ssh session, running container or docker activity \
                     (the watcher in the user data)",
                    idle::exact(secs)
                ),
            },
        ));
        rows.push((
            "Termination protection",
            if self.spot {
                "off (EC2 has none for spot instances)".into()
            } else {
                "on".into()
            },
        ));
        rows.iter()
            .map(|(k, v)| format!("  {k:<24}{v}\n"))
            .collect()
    }
}

/// The launch, from flags, dock.cfg and the user. The AMI id is resolved by the caller.
pub(crate) fn plan_launch(
    args: &Args,
    cfg: &DockCfg,
    user: &str,
    env_dock_user: Option<&str>,
) -> Launch {
    let moniker = args.moniker.clone().or_else(|| args.dock.clone());
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{user}-{}", moniker.as_deref().unwrap_or("dock")));
    let mut tags = vec![
        ("Name".to_string(), name.clone()),
        ("created_by".to_string(), user.to_string()),
    ];
    tags.extend(cfg.tags.iter().cloned());
    Launch {
        moniker,
        instance_type: args
            .instance_type
            .clone()
            .or_else(|| cfg.instance_type.clone())
            .unwrap_or_else(|| dock_cfg::DEFAULT_INSTANCE_TYPE.into()),
        ami: args
            .ami
            .clone()
            .or_else(|| cfg.ami_id.clone())
            .unwrap_or_default(),
        ami_source: if args.ami.is_some() {
            "-a".into()
        } else if cfg.ami_id.is_some() {
            "dock.cfg ami_id".into()
        } else {
            String::new()
        },
        key_name: cfg.key_name.clone(),
        security_group_ids: cfg.security_group_ids.clone(),
        subnet_id: cfg.subnet_id.clone(),
        iam_instance_profile: cfg.iam_instance_profile.clone(),
        volume_size: args
            .volume_size
            .or(cfg.volume_size)
            .unwrap_or(dock_cfg::DEFAULT_VOLUME_SIZE),
        volume_type: cfg.volume_type.clone().unwrap_or_else(|| "gp3".into()),
        device_name: cfg
            .device_name
            .clone()
            .unwrap_or_else(|| "/dev/sda1".into()),
        tags,
        user: args
            .user
            .clone()
            .or_else(|| cfg.user.clone())
            .or_else(|| env_dock_user.map(str::to_string))
            .unwrap_or_else(|| "ubuntu".into()),
        spot: if args.on_demand {
            false
        } else {
            args.spot || cfg.spot.unwrap_or(false)
        },
        idle_stop: args
            .idle_stop
            .or(cfg.idle_stop)
            .unwrap_or(idle::DEFAULT_LIMIT),
        name,
    }
}

impl Launch {
    /// The instance's user data: the watcher's installer (cloud-init runs it at first boot).
    pub(crate) fn user_data(&self) -> String {
        idle::installer(self.idle_stop)
    }
}

fn run_instance(aws: &Aws, launch: &Launch) -> Result<(String, Option<String>)> {
    let tags: Vec<Tag> = launch
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let mut req = aws
        .ec2()
        .run_instances()
        .image_id(&launch.ami)
        .instance_type(InstanceType::from(launch.instance_type.as_str()))
        .min_count(1)
        .max_count(1)
        // EC2 has no termination protection for spot instances (RunInstances refuses it).
        .disable_api_termination(!launch.spot)
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Stop)
        .user_data(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            launch.user_data(),
        ))
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name(&launch.device_name)
                .ebs(
                    EbsBlockDevice::builder()
                        .volume_size(launch.volume_size)
                        .volume_type(VolumeType::from(launch.volume_type.as_str()))
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(tags))
                .build(),
        )
        .set_key_name(launch.key_name.clone())
        .set_subnet_id(launch.subnet_id.clone());
    if !launch.security_group_ids.is_empty() {
        req = req.set_security_group_ids(Some(launch.security_group_ids.clone()));
    }
    if launch.spot {
        req = req.instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(
                    SpotMarketOptions::builder()
                        .spot_instance_type(SpotInstanceType::Persistent)
                        .instance_interruption_behavior(InstanceInterruptionBehavior::Stop)
                        .build(),
                )
                .build(),
        );
    }
    if let Some(profile) = &launch.iam_instance_profile {
        let spec = IamInstanceProfileSpecification::builder();
        let spec = if profile.starts_with("arn:") {
            spec.arn(profile)
        } else {
            spec.name(profile)
        };
        req = req.iam_instance_profile(spec.build());
    }
    let out = aws
        .block_on(ec2::interruptible(req.send()))?
        .map_err(|e| api_error("RunInstances", e))?;
    let instance = out.instances().first().ok_or_else(|| Error::Aws {
        message: "RunInstances returned no instance".into(),
        hint: None,
    })?;
    Ok((
        instance.instance_id().unwrap_or_default().to_string(),
        instance.private_ip_address().map(str::to_string),
    ))
}

/// `~/.ssh/<key_name>`: where the private key of the launch's key pair is expected.
fn home_ssh_key(key_name: &str) -> std::path::PathBuf {
    dirs::home_dir()
        .unwrap_or_default()
        .join(".ssh")
        .join(key_name)
}

fn run(args: &Args) -> Result<i32> {
    if let (Some(positional), Some(flag)) = (&args.dock, &args.moniker)
        && positional != flag
    {
        // Which one was meant cannot be known: choosing one silently named the dock wrong.
        return Err(Error::Usage(format!(
            "two monikers, `{positional}` and `-m {flag}`: give one (the positional name and \
             -m are the same setting)"
        )));
    }
    let cfg = dock_cfg::load(&dock_cfg::path())?;
    for key in &cfg.unknown {
        eprintln!(
            "create-dock: warning: {}: unknown key `{key}` ignored",
            cfg.path.display()
        );
    }
    let user = crate::project::user_name();
    let dock_user = std::env::var("DOCK_USER").ok().filter(|u| !u.is_empty());
    let mut launch = plan_launch(args, &cfg, &user, dock_user.as_deref());
    if let Some(moniker) = &launch.moniker {
        // Before an instance is launched for it.
        dock::check_moniker(moniker)?;
        if let Some(existing) = dock::find(moniker)
            .ok()
            .or_else(|| dock::moniker_taken(moniker, None))
        {
            return Err(Error::Usage(format!(
                "a dock named `{}` is already registered ({})",
                existing.name(),
                existing.destination()
            )));
        }
        // It becomes an ssh Host and a docker context: checked before anything is launched.
        crate::dock::ssh_config::check_moniker(moniker)?;
    }
    crate::dock::ssh_config::check_user(&launch.user)?;
    let aws = Aws::load(&args.aws)?;
    if launch.ami.is_empty() {
        let Some(tag) = &cfg.ami_name else {
            return Err(Error::Usage(
                "no AMI: pass -a ami-…, or set ami_id=\"ami-…\" or ami_name=\"NAME-TAG\" in \
                 ~/.docker/dock.cfg"
                    .into(),
            ));
        };
        launch.ami = ec2::ami_by_name_tag(&aws, tag)?;
        launch.ami_source = format!("Name tag {tag}");
    }
    if let Some(key) = launch
        .key_name
        .as_ref()
        .filter(|k| !home_ssh_key(k).exists())
    {
        eprintln!(
            "create-dock: warning: no ~/.ssh/{key}: ssh to the dock needs that key pair's \
             private key (in ~/.ssh or in ssh-agent)"
        );
    }
    println!("Dock to create:\n{}", launch.display(&aws.region()));
    if args.dry_run {
        return Ok(0);
    }
    if !super::confirm("Create this dock?", args.yes)? {
        return super::canceled();
    }
    let (id, _) = run_instance(&aws, &launch)?;
    println!("Created instance {id} ({})", launch.name);
    // RunInstances asked for it already; said again on its own, because some
    // AWS-compatible endpoints (moto, for one) ignore it at launch.
    if !launch.spot {
        ec2::set_termination_protection(&aws, &id, true)?;
    }
    let info = match ec2::wait(&aws, &id, Goal::Running) {
        Ok(info) => info,
        Err(e @ Error::Interrupted(_)) => {
            eprintln!(
                "create-dock: instance {id} was created and keeps starting; it is not \
                 registered.\n  to use it: `register-dock IP {} -u {}` once it runs (ls-dock \
                 after that shows it)\n  to remove it: `destroy-dock {id}`",
                launch.moniker.as_deref().unwrap_or("MONIKER"),
                launch.user
            );
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let ip = if args.public {
        info.public_ip.clone().ok_or_else(|| Error::Aws {
            message: format!("instance {id} has no public IP (--public)"),
            hint: Some(format!(
                "register its private IP: `register-dock {} …`",
                info.private_ip.as_deref().unwrap_or("IP")
            )),
        })?
    } else {
        info.private_ip.clone().ok_or_else(|| Error::Aws {
            message: format!("instance {id} has no private IP"),
            hint: None,
        })?
    };
    if args.skip_registration {
        println!("Dock {id} runs at {ip} (not registered: -s)");
        return Ok(0);
    }
    let mut extra = vec![("DOCK_INSTANCE_ID".into(), id.clone())];
    // The key pair's private key, where create-dock expects it: every tool's ssh to the
    // dock (the generated config's IdentityFile) uses it.
    if let Some(key) = launch
        .key_name
        .as_ref()
        .map(|k| home_ssh_key(k))
        .filter(|k| k.is_file())
    {
        extra.push(("DOCK_IDENTITY".into(), key.to_string_lossy().into_owned()));
    }
    let dock = Dock {
        user: launch.user.clone(),
        moniker: launch.moniker.clone().unwrap_or_else(|| "none".into()),
        hostname: ip.clone(),
        ip: ip.clone(),
        extra,
        dir: dock::registry_dir().join(&ip),
    };
    dock::register(&dock)?;
    dock::forget_host_key(&dock);
    println!(
        "Registered dock {} ({}), instance {id}\nTry:\n  source dock {}\n  ssh-dock {}\n  castoff",
        dock.name(),
        dock.destination(),
        dock.name(),
        dock.name()
    );
    crate::dock::hosts::after_change("create-dock", Some(&dock));
    Ok(0)
}

pub(crate) fn main(args: Args) -> i32 {
    super::exit_code("create-dock", run(&args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_control_characters_or_too_long_is_refused_as_a_usage_error() {
        for bad in ["gpu\u{1b}[2Jbox", "a\nb", " ", &"x".repeat(257)] {
            let err = Args::try_parse_from(["create-dock", "-n", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
        let ok = Args::try_parse_from(["create-dock", "-n", "Ann's GPU box (é)"]).unwrap();
        assert_eq!(ok.name.as_deref(), Some("Ann's GPU box (é)"));
    }

    #[test]
    fn the_prompt_shows_the_idle_limit_exactly() {
        let args = Args::parse_from(["create-dock", "-m", "gpu", "--idle-stop", "1d1h30m"]);
        let launch = plan_launch(&args, &DockCfg::default(), "ann", None);
        let shown = launch.display("us-east-1");
        assert!(
            shown.contains("after 1d1h30m with no ssh session"),
            "{shown}"
        );
    }

    #[test]
    fn flags_beat_dock_cfg_which_beats_defaults() {
        let args = Args::parse_from(["create-dock", "-m", "gpu", "-v", "250"]);
        let cfg = dock_cfg::parse(
            "instance_type=p3.2xlarge\nvolume_size=80\nami_id=ami-1\ntags=\"team=ml\"\n",
            std::path::Path::new("/d.cfg"),
        )
        .unwrap();
        let launch = plan_launch(&args, &cfg, "ann", Some("ec2-user"));
        assert_eq!(launch.name, "ann-gpu");
        assert_eq!(launch.moniker.as_deref(), Some("gpu"));
        assert_eq!(launch.instance_type, "p3.2xlarge");
        assert_eq!(launch.volume_size, 250);
        assert_eq!(
            (launch.ami.as_str(), launch.ami_source.as_str()),
            ("ami-1", "dock.cfg ami_id")
        );
        assert_eq!(launch.user, "ec2-user");
        assert_eq!(
            launch.tags,
            [
                ("Name".to_string(), "ann-gpu".to_string()),
                ("created_by".to_string(), "ann".to_string()),
                ("team".to_string(), "ml".to_string())
            ]
        );
        let bare = plan_launch(
            &Args::parse_from(["create-dock"]),
            &DockCfg::default(),
            "bo",
            None,
        );
        assert_eq!(
            (
                bare.name.as_str(),
                bare.instance_type.as_str(),
                bare.volume_size,
                bare.user.as_str()
            ),
            ("bo-dock", "c5.xlarge", 100, "ubuntu")
        );
        assert_eq!((bare.spot, bare.idle_stop), (false, idle::DEFAULT_LIMIT));
    }

    #[test]
    fn spot_and_idle_stop_from_flags_then_dock_cfg() {
        let cfg = dock_cfg::parse("spot=true\nidle_stop=2h\n", std::path::Path::new("/d")).unwrap();
        let plan = |argv: &[&str]| {
            let args = Args::parse_from([&["create-dock"], argv].concat());
            plan_launch(&args, &cfg, "ann", None)
        };
        let from_cfg = plan(&[]);
        assert_eq!(
            (from_cfg.spot, from_cfg.idle_stop),
            (true, Limit::After(7200))
        );
        let flags = plan(&["--on-demand", "--idle-stop", "off"]);
        assert_eq!((flags.spot, flags.idle_stop), (false, Limit::Off));
        assert!(flags.user_data().ends_with("install off\n"));
        let shown = from_cfg.display("us-east-1");
        assert!(shown.contains("spot (a persistent request"), "{shown}");
        assert!(shown.contains("after 2h with no ssh session"), "{shown}");
        assert!(shown.contains("off (EC2 has none for spot"), "{shown}");
        assert!(shown.contains("stop (never terminate)"), "{shown}");
        assert!(Args::try_parse_from(["create-dock", "--idle-stop", "1h; reboot"]).is_err());
        assert!(Args::try_parse_from(["create-dock", "--spot", "--on-demand"]).is_err());
    }
}
