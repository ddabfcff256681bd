//! Docks that are EC2 instances: finding a dock's instance, launching one, and waiting
//! for a state with progress, interruptible by Ctrl-C.

use super::{Aws, api_error};
use crate::dock::Dock;
use crate::error::{Error, Result};
use aws_sdk_ec2::types::{Filter, Instance, InstanceAttributeName, InstanceStateName};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// What dockerutils needs to know of an instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InstanceInfo {
    pub id: String,
    pub state: String,
    pub instance_type: String,
    pub private_ip: Option<String>,
    pub public_ip: Option<String>,
    pub name: Option<String>,
    /// `spot` for a spot instance (EC2's InstanceLifecycle; none for on-demand).
    pub lifecycle: Option<String>,
    /// The spot request that launched it, when EC2 says.
    pub spot_request: Option<String>,
    /// Why it is in its state (EC2's StateReason code: `Server.SpotInstanceShutdown`,
    /// `Client.InstanceInitiatedShutdown`…).
    pub state_reason: Option<String>,
    /// When it last started (EC2's LaunchTime: the last start, not the first launch), in
    /// seconds since the epoch.
    pub launch_time: Option<i64>,
}

impl InstanceInfo {
    fn from_sdk(i: &Instance) -> InstanceInfo {
        InstanceInfo {
            id: i.instance_id().unwrap_or_default().to_string(),
            state: i
                .state()
                .and_then(|s| s.name())
                .map(|n| n.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
            instance_type: i
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            private_ip: i.private_ip_address().map(str::to_string),
            public_ip: i.public_ip_address().map(str::to_string),
            name: i
                .tags()
                .iter()
                .find(|t| t.key() == Some("Name"))
                .and_then(|t| t.value())
                .map(str::to_string),
            lifecycle: i.instance_lifecycle().map(|l| l.as_str().to_string()),
            spot_request: i
                .spot_instance_request_id()
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            state_reason: i
                .state_reason()
                .and_then(|r| r.code())
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            launch_time: i.launch_time().map(|t| t.secs()),
        }
    }

    pub(crate) fn is_spot(&self) -> bool {
        self.lifecycle.as_deref() == Some("spot")
    }

    /// Terminated instances linger in the API for a while: for a dock they are gone.
    pub(crate) fn is_gone(&self) -> bool {
        matches!(self.state.as_str(), "terminated" | "shutting-down")
    }
}

/// The instance id a registration records (`DOCK_INSTANCE_ID`), if any.
pub(crate) fn registered_instance_id(dock: &Dock) -> Option<&str> {
    dock.extra
        .iter()
        .find(|(k, _)| k == "DOCK_INSTANCE_ID")
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Is this a registration of an EC2 dock: one create-dock made (its instance id), or one
/// 2.0.7 provisioned through Service Catalog? A dock registered by `register-dock` alone
/// may be any machine: ls-dock asks AWS nothing for it.
pub(crate) fn is_ec2_registration(dock: &Dock) -> bool {
    registered_instance_id(dock).is_some()
        || dock
            .extra
            .iter()
            .any(|(k, v)| k == "DOCK_PROVISIONED_PRODUCT" && !v.is_empty())
}

/// Every instance the filters select (all pages).
pub(crate) fn describe(aws: &Aws, filters: Vec<Filter>) -> Result<Vec<InstanceInfo>> {
    let client = aws.ec2();
    let mut out = vec![];
    let mut token: Option<String> = None;
    loop {
        let page = aws
            .block_on(interruptible(
                client
                    .describe_instances()
                    .set_filters((!filters.is_empty()).then(|| filters.clone()))
                    .set_next_token(token.take())
                    .send(),
            ))?
            .map_err(|e| api_error("DescribeInstances", e))?;
        for reservation in page.reservations() {
            out.extend(reservation.instances().iter().map(InstanceInfo::from_sdk));
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

pub(crate) fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().map(Into::into).collect()))
        .build()
}

/// The instance behind a dock: by its registered instance id, else by its IP (private,
/// then public), as the original looks docks up. `None` when no live instance matches.
/// Private addresses repeat across VPCs: when more than one live instance has the
/// dock's IP, this is an error that lists them, never a guess (stop-dock and
/// destroy-dock act on what this returns).
pub(crate) fn instance_of(aws: &Aws, dock: &Dock) -> Result<Option<InstanceInfo>> {
    let found = match registered_instance_id(dock) {
        Some(id) => describe(aws, vec![filter("instance-id", [id])])?,
        None => {
            let mut found = describe(aws, vec![filter("private-ip-address", [&dock.ip])])?;
            if found.iter().all(InstanceInfo::is_gone) {
                found = describe(aws, vec![filter("ip-address", [&dock.ip])])?;
            }
            found
        }
    };
    let mut live: Vec<InstanceInfo> = found.into_iter().filter(|i| !i.is_gone()).collect();
    if live.len() > 1 {
        let list: Vec<String> = live
            .iter()
            .map(|i| match &i.name {
                Some(name) => format!("{} ({name}, {})", i.id, i.state),
                None => format!("{} ({})", i.id, i.state),
            })
            .collect();
        return Err(Error::Aws {
            message: format!(
                "{} instances have the IP {} (VPCs can reuse private addresses): {}; \
                 not choosing one",
                live.len(),
                dock.ip,
                list.join(", ")
            ),
            hint: Some(format!(
                "say which is the dock: add DOCK_INSTANCE_ID=<id> to {}",
                dock.dir.join(crate::dock::CONFIG_FILE).display()
            )),
        });
    }
    Ok(live.pop())
}

/// Like [`instance_of`], but a missing instance is an error saying what to do.
pub(crate) fn require_instance(aws: &Aws, dock: &Dock) -> Result<InstanceInfo> {
    if let Some(product) = dock
        .extra
        .iter()
        .find(|(k, _)| k == "DOCK_PROVISIONED_PRODUCT")
        .map(|(_, v)| v)
        .filter(|_| registered_instance_id(dock).is_none())
    {
        return Err(Error::Aws {
            message: format!(
                "dock {} was provisioned through AWS Service Catalog (product {product})",
                dock.name()
            ),
            hint: Some(format!(
                "manage it there: `aws servicecatalog terminate-provisioned-product \
                 --provisioned-product-id {product}`, then `unregister-dock {}`",
                dock.name()
            )),
        });
    }
    instance_of(aws, dock)?.ok_or_else(|| {
        let Some(id) = registered_instance_id(dock) else {
            // Registered by IP (register-dock) and no instance has that IP: a server, not a
            // dock whose instance is gone. Saying "no longer exists" would invite removing
            // a registration that is in use.
            return Error::Aws {
                message: format!(
                    "{} is not an EC2 dock (registered with register-dock, and no instance of \
                     region {} has its IP {}): there is no instance to start, stop or destroy",
                    dock.name(),
                    aws.region(),
                    dock.ip
                ),
                hint: Some(format!(
                    "`unregister-dock {}` removes it; if it is an EC2 instance, `--region` for \
                     another region, or add DOCK_INSTANCE_ID=<id> to {}",
                    dock.name(),
                    dock.dir.join(crate::dock::CONFIG_FILE).display()
                )),
            };
        };
        let what = format!("instance {id}");
        Error::Aws {
            message: format!(
                "dock {}: {what} no longer exists in region {} (terminated, or never an EC2 \
                 instance)",
                dock.name(),
                aws.region()
            ),
            hint: Some(format!(
                "`unregister-dock {}` removes the registration; `--region` if the dock lives \
                 in another region",
                dock.name()
            )),
        }
    })
}

/// Runs a future, giving up when the user presses Ctrl-C (or SIGTERM arrives).
pub(crate) async fn interruptible<F: std::future::Future>(fut: F) -> Result<F::Output> {
    crate::process::install_signal_handlers();
    let watch = async {
        loop {
            if crate::process::interrupted() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        out = fut => Ok(out),
        () = watch => Err(Error::Interrupted("stopped waiting for AWS".into())),
    }
}

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Goal {
    Running,
    /// Running, and both status checks (system and instance) pass.
    StatusOk,
    Stopped,
    Terminated,
}

impl Goal {
    fn describe(self) -> &'static str {
        match self {
            Goal::Running => "to run",
            Goal::StatusOk => "to run and pass its status checks",
            Goal::Stopped => "to stop",
            Goal::Terminated => "to terminate",
        }
    }
}

/// Polls until the instance reaches the goal, showing its state as it goes (a spinner
/// on a terminal, a line per change otherwise). Ctrl-C stops the wait, not the instance.
pub(crate) fn wait(aws: &Aws, id: &str, goal: Goal) -> Result<InstanceInfo> {
    let started = Instant::now();
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let say = |text: String| match &spinner {
        Some(bar) => bar.set_message(text),
        None => eprintln!("{text}"),
    };
    let mut last = String::new();
    let result = (|| loop {
        let info = describe(aws, vec![filter("instance-id", [id])])?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Aws {
                message: format!("instance {id} disappeared while waiting for it"),
                hint: None,
            })?;
        let mut status = info.state.clone();
        let done = match goal {
            Goal::Running => info.state == InstanceStateName::Running.as_str(),
            Goal::Stopped => info.state == InstanceStateName::Stopped.as_str(),
            Goal::Terminated => info.state == InstanceStateName::Terminated.as_str(),
            Goal::StatusOk if info.state == InstanceStateName::Running.as_str() => {
                let checks = status_checks(aws, id)?;
                status = format!("running, status checks {checks}");
                checks == "ok"
            }
            Goal::StatusOk => false,
        };
        let failed = match goal {
            Goal::Running | Goal::StatusOk | Goal::Stopped => info.is_gone(),
            Goal::Terminated => false,
        };
        if status != last && !done {
            say(format!(
                "waiting for {id} {}: {status} ({} s)",
                goal.describe(),
                started.elapsed().as_secs()
            ));
            last = status.clone();
        }
        if done {
            return Ok(info);
        }
        if failed {
            return Err(Error::Aws {
                message: format!("instance {id} is {} instead", info.state),
                hint: Some("see the instance's state reason in the EC2 console".into()),
            });
        }
        aws.block_on(interruptible(tokio::time::sleep(poll_interval())))?;
    })();
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    if result.is_ok() {
        eprintln!(
            "{id} is {} ({} s)",
            match goal {
                Goal::Running => "running",
                Goal::StatusOk => "running and its status checks pass",
                Goal::Stopped => "stopped",
                Goal::Terminated => "terminated",
            },
            started.elapsed().as_secs()
        );
    }
    result
}

fn poll_interval() -> Duration {
    Duration::from_secs(2)
}

/// "ok" when both checks pass, else the worse of the two ("initializing", "impaired"…).
fn status_checks(aws: &Aws, id: &str) -> Result<String> {
    let out = aws
        .block_on(interruptible(
            aws.ec2()
                .describe_instance_status()
                .instance_ids(id)
                .include_all_instances(true)
                .send(),
        ))?
        .map_err(|e| api_error("DescribeInstanceStatus", e))?;
    let Some(s) = out.instance_statuses().first() else {
        return Ok("pending".into());
    };
    let system = s
        .system_status()
        .and_then(|x| x.status())
        .map(|x| x.as_str().to_string())
        .unwrap_or_else(|| "pending".into());
    let instance = s
        .instance_status()
        .and_then(|x| x.status())
        .map(|x| x.as_str().to_string())
        .unwrap_or_else(|| "pending".into());
    Ok(if system == "ok" && instance == "ok" {
        "ok".into()
    } else if system != "ok" {
        system
    } else {
        instance
    })
}

/// The newest image whose `Name` tag is `name` (owned by anyone the account can see).
pub(crate) fn ami_by_name_tag(aws: &Aws, name: &str) -> Result<String> {
    let out = aws
        .block_on(interruptible(
            aws.ec2()
                .describe_images()
                .filters(filter("tag:Name", [name]))
                .send(),
        ))?
        .map_err(|e| api_error("DescribeImages", e))?;
    let mut images: Vec<_> = out
        .images()
        .iter()
        .filter_map(|i| Some((i.creation_date().unwrap_or("").to_string(), i.image_id()?)))
        .collect();
    images.sort();
    images
        .last()
        .map(|(_, id)| id.to_string())
        .ok_or_else(|| Error::Aws {
            message: format!(
                "no AMI has the Name tag `{name}` in region {}",
                aws.region()
            ),
            hint: Some(
                "give the AMI with -a ami-…, or set `ami_id` / `ami_name` in ~/.docker/dock.cfg"
                    .into(),
            ),
        })
}

/// The spot request behind a spot instance: the one EC2 names on the instance, else the
/// request whose instance it is. A persistent request outlives its instance and launches
/// another: it is cancelled before the instance is terminated.
pub(crate) fn spot_request_of(aws: &Aws, instance: &InstanceInfo) -> Result<Option<String>> {
    if let Some(id) = &instance.spot_request {
        return Ok(Some(id.clone()));
    }
    let out = aws
        .block_on(interruptible(
            aws.ec2()
                .describe_spot_instance_requests()
                .filters(filter("instance-id", [&instance.id]))
                .send(),
        ))?
        .map_err(|e| api_error("DescribeSpotInstanceRequests", e))?;
    Ok(out
        .spot_instance_requests()
        .iter()
        .find(|r| r.instance_id() == Some(instance.id.as_str()))
        .and_then(|r| r.spot_instance_request_id())
        .map(str::to_string))
}

pub(crate) fn cancel_spot_request(aws: &Aws, request: &str) -> Result<()> {
    aws.block_on(interruptible(
        aws.ec2()
            .cancel_spot_instance_requests()
            .spot_instance_request_ids(request)
            .send(),
    ))?
    .map_err(|e| api_error("CancelSpotInstanceRequests", e))?;
    Ok(())
}

/// What the instance does when shut down from inside (`stop` or `terminate`).
pub(crate) fn shutdown_behavior(aws: &Aws, id: &str) -> Result<String> {
    let out = aws
        .block_on(interruptible(
            aws.ec2()
                .describe_instance_attribute()
                .instance_id(id)
                .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
                .send(),
        ))?
        .map_err(|e| api_error("DescribeInstanceAttribute", e))?;
    Ok(out
        .instance_initiated_shutdown_behavior()
        .and_then(|v| v.value())
        .unwrap_or("stop")
        .to_string())
}

/// Makes a shutdown from inside stop the instance, never terminate it.
pub(crate) fn set_shutdown_behavior_stop(aws: &Aws, id: &str) -> Result<()> {
    aws.block_on(interruptible(
        aws.ec2()
            .modify_instance_attribute()
            .instance_id(id)
            .attribute(InstanceAttributeName::InstanceInitiatedShutdownBehavior)
            .value("stop")
            .send(),
    ))?
    .map_err(|e| api_error("ModifyInstanceAttribute", e))?;
    Ok(())
}

/// Turns termination protection on or off.
pub(crate) fn set_termination_protection(aws: &Aws, id: &str, on: bool) -> Result<()> {
    aws.block_on(interruptible(
        aws.ec2()
            .modify_instance_attribute()
            .instance_id(id)
            .disable_api_termination(
                aws_sdk_ec2::types::AttributeBooleanValue::builder()
                    .value(on)
                    .build(),
            )
            .send(),
    ))?
    .map_err(|e| api_error("ModifyInstanceAttribute", e))?;
    Ok(())
}
