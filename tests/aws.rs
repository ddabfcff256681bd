//! EC2 docks and publish-image against a real AWS API emulator: a `moto` server on
//! 127.0.0.1 behind tests/aws-proxy.py (tests/common/moto.rs). Pushes go to a real
//! registry (Debian's docker-registry) on 127.0.0.1. The state in moto is checked with
//! boto3, independently of our code.

mod common;

use common::moto::moto;
use common::{BUSYBOX_DOCKERFILE, Project, USER, registry, require_engine, wait_exit};
use serde_json::Value;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn tag(instance: &Value, key: &str) -> Option<String> {
    instance["Tags"]
        .as_array()?
        .iter()
        .find(|t| t["Key"] == key)
        .map(|t| t["Value"].as_str().unwrap().to_string())
}

fn value_of(registration: &str, key: &str) -> String {
    registration
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in\n{registration}"))
        .to_string()
}

#[test]
fn a_dock_is_created_listed_stopped_started_and_destroyed() {
    let aws = moto();
    let ami = aws.ami_named("dock-ami");
    let net = aws.boto(
        "vpc = ec2.create_vpc(CidrBlock='10.7.0.0/16')['Vpc']['VpcId']\n\
         sub = ec2.create_subnet(VpcId=vpc, CidrBlock='10.7.1.0/24')['Subnet']['SubnetId']\n\
         sg = ec2.create_security_group(GroupName='docks', Description='d', VpcId=vpc)['GroupId']\n\
         ec2.create_key_pair(KeyName='dock-key')\n\
         out = [sub, sg]",
    );
    let (subnet, sg) = (net[0].as_str().unwrap(), net[1].as_str().unwrap());
    std::fs::create_dir_all(aws.home().join(".docker")).unwrap();
    std::fs::write(
        aws.home().join(".docker/dock.cfg"),
        format!(
            "# as the original's create-dock sourced it\nkey_name=\"dock-key\"\n\
             security_group_ids=\"{sg}\"\nsubnet_id=\"{subnet}\"\nami_name=\"dock-ami\"\n\
             tags=\"team=ml\"\nvolume_size=30\n"
        ),
    )
    .unwrap();

    // Without a terminal, it needs -y, and creates nothing.
    let out = aws
        .cmd("create-dock")
        .args(["-m", "lab", "-i", "t3.micro"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Pass -y to confirm"),
        "{}",
        text(&out.stderr)
    );
    assert!(!aws.actions().contains(&"RunInstances".to_string()));

    // The key pair's private key where create-dock looks for it: registered with the dock.
    std::fs::create_dir_all(aws.home().join(".ssh")).unwrap();
    std::fs::write(aws.home().join(".ssh/dock-key"), "not a real key\n").unwrap();
    let out = ok(aws
        .cmd("create-dock")
        .args(["-m", "lab", "-i", "t3.micro", "-y"])
        .output()
        .unwrap());
    assert!(out.contains(&format!("{ami} (Name tag dock-ami)")), "{out}");
    assert!(out.contains("30 GB"), "{out}");
    let reg_dir = std::fs::read_dir(aws.home().join(".docker"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().join("connection_config.txt").exists())
        .expect("a registration")
        .path();
    let ip = reg_dir.file_name().unwrap().to_string_lossy().to_string();
    let reg = aws.registration(&ip).unwrap();
    assert_eq!(value_of(&reg, "DOCK_MONIKER"), "lab");
    assert_eq!(value_of(&reg, "DOCK_USER"), "ubuntu");
    let id = value_of(&reg, "DOCK_INSTANCE_ID");
    let key = aws.home().join(".ssh/dock-key");
    assert_eq!(value_of(&reg, "DOCK_IDENTITY"), key.to_str().unwrap());
    let generated =
        std::fs::read_to_string(aws.home().join(".docker/.dockerutils/ssh_config")).unwrap();
    assert!(
        generated.contains(&format!("\nHost lab {ip}\n"))
            && generated.contains(&format!("  IdentityFile {}\n", key.display())),
        "{generated}"
    );

    let inst = aws.instance(&id);
    assert_eq!(inst["State"]["Name"], "running");
    assert_eq!(inst["PrivateIpAddress"], ip.as_str());
    assert_eq!(inst["InstanceType"], "t3.micro");
    assert_eq!(inst["ImageId"], ami.as_str());
    assert_eq!(inst["KeyName"], "dock-key");
    assert_eq!(inst["SubnetId"], subnet);
    assert_eq!(inst["SecurityGroups"][0]["GroupId"], sg);
    assert_eq!(inst["Protected"], true, "termination protection");
    assert_eq!(tag(&inst, "Name").as_deref(), Some(&*format!("{USER}-lab")));
    assert_eq!(tag(&inst, "created_by").as_deref(), Some(USER));
    assert_eq!(tag(&inst, "team").as_deref(), Some("ml"));
    let vol = aws.boto(&format!(
        "v = ec2.describe_volumes(Filters=[{{'Name': 'attachment.instance-id', 'Values': ['{id}']}}])['Volumes']\n\
         out = [x['Size'] for x in v]"
    ));
    assert_eq!(vol, serde_json::json!([30]));

    let listing = ok(aws.cmd("ls-dock").output().unwrap());
    let row = listing
        .lines()
        .find(|l| l.contains(" lab "))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        row.contains(&id) && row.contains("t3.micro") && row.ends_with("running"),
        "{listing}"
    );

    ok(aws.cmd("stop-dock").args(["lab", "-y"]).output().unwrap());
    assert_eq!(aws.instance(&id)["State"]["Name"], "stopped");
    let listing = ok(aws.cmd("ls-dock").output().unwrap());
    assert!(
        listing
            .lines()
            .any(|l| l.contains(" lab ") && l.ends_with("stopped")),
        "{listing}"
    );

    // start-dock defaults to the current dock.
    let out = ok(aws
        .cmd("start-dock")
        .env("DOCKER_IP", &ip)
        .output()
        .unwrap());
    assert!(out.contains("Dock lab is up"), "{out}");
    assert_eq!(aws.instance(&id)["State"]["Name"], "running");
    assert!(
        aws.actions()
            .contains(&"DescribeInstanceStatus".to_string())
    );

    // destroy-dock lifts the protection, terminates and unregisters.
    let out = ok(aws
        .cmd("destroy-dock")
        .args(["-y", "lab"])
        .output()
        .unwrap());
    assert!(out.contains(&format!("Destroyed dock lab ({id})")), "{out}");
    assert_eq!(aws.instance(&id)["State"]["Name"], "terminated");
    assert!(!reg_dir.exists(), "registration removed");
    let actions = aws.actions();
    let pos = |a: &str| {
        actions
            .iter()
            .position(|x| x == a)
            .unwrap_or_else(|| panic!("{a} in {actions:?}"))
    };
    assert!(pos("ModifyInstanceAttribute") < pos("TerminateInstances"));
}

#[test]
fn a_dock_registered_by_its_public_ip_is_followed_to_its_new_one_with_its_ssh_host_and_context() {
    let aws = moto();
    let ami = aws.boto("out = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']");
    let ami = ami.as_str().unwrap();
    ok(aws
        .cmd("create-dock")
        .args(["-m", "pub", "-a", ami, "-i", "t3.micro", "--public", "-y"])
        .output()
        .unwrap());
    let generated = aws.home().join(".docker/.dockerutils/ssh_config");
    let host_line = || {
        std::fs::read_to_string(&generated)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Host pub "))
            .map(str::to_string)
    };
    let context = || {
        let out = aws
            .shell("docker context inspect --format '{{.Endpoints.docker.Host}}' pub")
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| text(&out.stdout).trim().to_string())
    };
    let row = || {
        let listing = text(&aws.cmd("ls-dock").output().unwrap().stdout);
        listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some("pub"))
            .unwrap_or_else(|| panic!("{listing}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let first = host_line().expect("a Host block for pub");
    let ip1 = first.split_whitespace().nth(2).unwrap().to_string();
    assert!(
        aws.registration(&ip1).is_some(),
        "registered at its public IP {ip1}"
    );
    assert_eq!(context().as_deref(), Some(&*format!("ssh://ubuntu@{ip1}")));
    assert!(row().ends_with(" yes running"), "{}", row());

    // A stopped instance loses its public IP and gets another when it starts.
    ok(aws.cmd("stop-dock").args(["pub", "-y"]).output().unwrap());
    let out = ok(aws.cmd("start-dock").arg("pub").output().unwrap());
    let line = host_line().expect("a Host block for pub");
    let ip2 = line.split_whitespace().nth(2).unwrap().to_string();
    assert_ne!(ip1, ip2);
    assert!(
        out.contains(&format!("has a new address: {ip2} (was {ip1})")),
        "{out}"
    );
    assert!(aws.registration(&ip1).is_none() && aws.registration(&ip2).is_some());
    assert_eq!(context().as_deref(), Some(&*format!("ssh://ubuntu@{ip2}")));

    // ls-dock says which dock is docker's current context.
    assert!(
        aws.shell("docker context use pub")
            .output()
            .unwrap()
            .status
            .success()
    );
    assert!(row().ends_with(" current running"), "{}", row());

    ok(aws
        .cmd("destroy-dock")
        .args(["-y", "pub"])
        .output()
        .unwrap());
    assert_eq!(host_line(), None);
    assert_eq!(context(), None);
}

#[test]
fn at_a_terminal_create_dock_asks_and_no_creates_nothing() {
    let aws = moto();
    let ami = aws.ami_named("asked");
    aws.actions();
    let line = format!(
        "printf 'n\\n' | script -qfec 'create-dock -m asked -a {ami} && echo CREATED' /dev/null"
    );
    let out = aws.shell(&line).output().unwrap();
    let shown = text(&out.stdout);
    assert!(shown.contains("Create this dock? [y/N]"), "{shown}");
    assert!(shown.contains("Canceled"), "{shown}");
    // No is not success: a script's `&&` must not go on as if the dock were made.
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(!shown.contains("CREATED"), "{shown}");
    assert!(!aws.actions().contains(&"RunInstances".to_string()));
    let running = aws.boto(
        "out = [i['InstanceId'] for r in ec2.describe_instances(Filters=[{'Name': 'tag:Name', 'Values': ['tester-asked']}])['Reservations'] for i in r['Instances']]",
    );
    assert_eq!(running, serde_json::json!([]));
}

#[test]
fn at_a_terminal_no_to_stop_dock_or_destroy_dock_changes_nothing_and_exits_1() {
    let aws = moto();
    let v = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         i = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1)['Instances'][0]\n\
         out = [i['InstanceId'], i['PrivateIpAddress']]",
    );
    let (id, ip) = (v[0].as_str().unwrap(), v[1].as_str().unwrap());
    let dir = aws.home().join(".docker").join(ip);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        format!(
            "DOCK_USER=ubuntu\nDOCK_MONIKER=asked\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\nDOCK_INSTANCE_ID={id}\n"
        ),
    )
    .unwrap();
    // `n`, and a bare Enter (the default is no).
    for (answer, command) in [("n", "stop-dock asked"), ("", "destroy-dock asked")] {
        let line =
            format!("printf '{answer}\\n' | script -qfec '{command} && echo DONE' /dev/null");
        let out = aws.shell(&line).output().unwrap();
        let shown = text(&out.stdout);
        assert!(
            shown.contains("[y/N]") && shown.contains("Canceled"),
            "{shown}"
        );
        assert_eq!(out.status.code(), Some(1), "{command}: {shown}");
        assert!(!shown.contains("DONE"), "{shown}");
        assert_eq!(aws.instance(id)["State"]["Name"], "running", "{command}");
        assert!(aws.registration(ip).is_some(), "{command}");
    }
}

#[test]
fn ls_dock_asks_aws_once_for_all_docks() {
    let aws = moto();
    let ids = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         r = ec2.run_instances(ImageId=img, MinCount=3, MaxCount=3, InstanceType='t3.small')['Instances']\n\
         ec2.stop_instances(InstanceIds=[r[1]['InstanceId']])\n\
         out = [[i['InstanceId'], i['PrivateIpAddress']] for i in r]",
    );
    let id = |n: usize| ids[n][0].as_str().unwrap().to_string();
    let ip = |n: usize| ids[n][1].as_str().unwrap().to_string();
    let register = |ip: &str, moniker: &str, extra: &str| {
        let dir = aws.home().join(".docker").join(ip);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("connection_config.txt"),
            format!("DOCK_USER=ubuntu\nDOCK_MONIKER={moniker}\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\n{extra}"),
        )
        .unwrap();
    };
    register(&ip(0), "by-id", &format!("DOCK_INSTANCE_ID={}\n", id(0)));
    register(&ip(1), "by-ip", "");
    register("10.9.9.9", "gone", "DOCK_INSTANCE_ID=i-0123456789abcdef0\n");
    register("192.168.50.2", "onprem", "");
    for n in 0..40 {
        register(&format!("10.200.0.{n}"), &format!("extra{n}"), "");
    }
    aws.actions();
    let listing = ok(aws.cmd("ls-dock").output().unwrap());
    assert_eq!(
        aws.actions(),
        ["DescribeInstances", "GetProducts"],
        "one EC2 call for 44 docks, and the price of their one instance type"
    );
    let state = |name: &str| {
        let row = listing
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in\n{listing}"));
        row.split_whitespace()
            .skip(11)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(state("by-id"), "running");
    assert_eq!(state("by-ip"), "stopped");
    assert_eq!(state("gone"), "gone");
    assert_eq!(state("onprem"), "unmanaged");
    assert!(
        listing
            .lines()
            .next()
            .unwrap()
            .trim_start()
            .starts_with("NAME")
    );
    assert!(
        listing.contains(&id(1)),
        "by-ip's instance is found by its IP:\n{listing}"
    );
}

#[test]
fn no_credentials_is_one_clear_message() {
    let aws = moto();
    let mut cmd = aws.cmd("ls-dock");
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", aws.home().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            aws.home().join("no-credentials"),
        );
    std::fs::create_dir_all(aws.home().join(".docker/10.1.1.1")).unwrap();
    std::fs::write(
        aws.home().join(".docker/10.1.1.1/connection_config.txt"),
        "DOCK_USER=ubuntu\nDOCK_MONIKER=one\nDOCK_HOSTNAME=10.1.1.1\nDOCK_IP=10.1.1.1\n",
    )
    .unwrap();
    // A dock create-dock made: AWS must be asked.
    std::fs::create_dir_all(aws.home().join(".docker/10.1.1.2")).unwrap();
    std::fs::write(
        aws.home().join(".docker/10.1.1.2/connection_config.txt"),
        "DOCK_USER=ubuntu\nDOCK_MONIKER=made\nDOCK_HOSTNAME=10.1.1.2\nDOCK_IP=10.1.1.2\n\
         DOCK_INSTANCE_ID=i-0123456789abcdef0\n",
    )
    .unwrap();
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ls-dock: error: no AWS credentials found"),
        "{err}"
    );
    assert!(
        err.contains("hint: configure them") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    assert!(
        text(&out.stdout).contains("one"),
        "the docks are still listed"
    );
    assert!(aws.actions().is_empty(), "no request without credentials");

    // A profile in ~/.aws/credentials is found the standard way, and --endpoint-url
    // does what AWS_ENDPOINT_URL does.
    std::fs::create_dir_all(aws.home().join(".aws")).unwrap();
    std::fs::write(
        aws.home().join(".aws/credentials"),
        "[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    let out = aws
        .cmd("ls-dock")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_PROFILE", "lab")
        .arg("--endpoint-url")
        .arg(&aws.proxy_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.contains("one") && l.ends_with("unmanaged"))
    );
    assert_eq!(aws.actions(), ["DescribeInstances"]);

    let out = aws
        .cmd("create-dock")
        .args(["-a", "ami-12345678", "-y"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            aws.home().join("no-credentials"),
        )
        .env("AWS_CONFIG_FILE", aws.home().join("no-config"))
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("no AWS credentials found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unknown_region_is_refused_before_any_request() {
    let aws = moto();
    let out = aws
        .cmd("create-dock")
        .args(["-a", "ami-12345678", "-y"])
        .env("AWS_REGION", "us-esat-1")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown AWS region `us-esat-1`"), "{err}");
    assert!(err.contains("us-east-1"), "close regions are named: {err}");
    let out = aws
        .cmd("start-dock")
        .arg("x")
        .arg("--region")
        .arg("mars-1")
        .output()
        .unwrap();
    // `x` is no registered dock either: a usage error, before any request.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(aws.actions().is_empty());
}

#[test]
fn a_registration_whose_instance_no_longer_exists() {
    let aws = moto();
    let gone = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         i = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1)['Instances'][0]\n\
         ec2.terminate_instances(InstanceIds=[i['InstanceId']])\n\
         out = i['InstanceId']",
    );
    let dir = aws.home().join(".docker/10.3.3.3");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        format!("DOCK_USER=ubuntu\nDOCK_MONIKER=old\nDOCK_HOSTNAME=10.3.3.3\nDOCK_IP=10.3.3.3\nDOCK_INSTANCE_ID={}\n", gone.as_str().unwrap()),
    )
    .unwrap();
    for program in ["start-dock", "stop-dock"] {
        let out = aws
            .cmd(program)
            .args(
                ["old", "-y"]
                    .iter()
                    .take(if program == "stop-dock" { 2 } else { 1 }),
            )
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{program}: {err}");
        assert!(
            err.contains(&format!(
                "instance {} no longer exists",
                gone.as_str().unwrap()
            )),
            "{err}"
        );
        assert!(err.contains("unregister-dock old"), "{err}");
    }
    let listing = ok(aws.cmd("ls-dock").output().unwrap());
    assert!(
        listing
            .lines()
            .any(|l| l.contains("old") && l.ends_with("gone (terminated)")),
        "{listing}"
    );
    let out = ok(aws
        .cmd("destroy-dock")
        .args(["old", "-y"])
        .output()
        .unwrap());
    assert!(out.contains("removing the registration only"), "{out}");
    assert!(!dir.exists());
    assert!(!aws.actions().contains(&"TerminateInstances".to_string()));
}

#[test]
fn create_dock_refuses_two_monikers_a_case_clash_and_says_why_a_name_is_no_moniker() {
    let aws = moto();
    let dir = aws.home().join(".docker/10.3.9.8");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        "DOCK_USER=ubuntu\nDOCK_MONIKER=realdock\nDOCK_HOSTNAME=10.3.9.8\nDOCK_IP=10.3.9.8\n",
    )
    .unwrap();
    aws.actions();
    let create = |args: &[&str]| {
        let out = aws
            .cmd("create-dock")
            .args(args)
            .args(["-a", "ami-12345678", "-y"])
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let (code, err) = create(&["one", "-m", "two"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("two monikers, `one` and `-m two`"), "{err}");
    // The same one twice is one moniker: refused here only for the clash below, which
    // names the dock as it is registered.
    let (code, err) = create(&["REALDOCK", "-m", "REALDOCK"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("a dock named `realdock` is already registered"),
        "{err}"
    );
    let (code, err) = create(&["-m", "default"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("it is docker's own context name") && !err.contains("address"),
        "{err}"
    );
    assert!(aws.actions().is_empty(), "refused before any request");
}

#[test]
fn an_endpoint_that_refuses_or_is_no_aws_is_said_in_one_sentence() {
    let aws = moto();
    let dir = aws.home().join(".docker/10.3.9.7");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        "DOCK_USER=ubuntu\nDOCK_MONIKER=ec2dock\nDOCK_HOSTNAME=10.3.9.7\nDOCK_IP=10.3.9.7\nDOCK_INSTANCE_ID=i-0123456789abcdef0\n",
    )
    .unwrap();
    // A web server that is no AWS: every connection gets a 404 page.
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let web_url = format!("http://{}", web.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in web.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let _ = conn.read(&mut buf);
            let _ = std::io::Write::write_all(
                &mut conn,
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            );
        }
    });
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_url = format!("http://{}", refused.local_addr().unwrap());
    drop(refused);
    for (url, said) in [
        (&refused_url, "could not connect: connection refused"),
        (&web_url, "the answer is not an AWS answer"),
    ] {
        let out = aws
            .cmd("ls-dock")
            .args(["--endpoint-url", url])
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("error: DescribeInstances to {url}: {said}")),
            "{err}"
        );
        assert!(err.contains("hint: "), "{err}");
        assert!(
            !err.contains("DispatchFailure") && !err.contains("ServiceError") && !err.contains("{"),
            "no debug dump: {err}"
        );
    }
}

#[test]
fn a_dock_that_was_never_ec2_is_refused_not_unregistered() {
    let aws = moto();
    // Registered with register-dock: no instance id, and no instance has its address.
    let dir = aws.home().join(".docker/10.3.9.9");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        "DOCK_USER=admin\nDOCK_MONIKER=server\nDOCK_HOSTNAME=10.3.9.9\nDOCK_IP=10.3.9.9\n",
    )
    .unwrap();
    for args in [
        &["start-dock", "server"][..],
        &["stop-dock", "server", "-y"],
        &["destroy-dock", "server", "-y"],
    ] {
        let out = aws.cmd(args[0]).args(&args[1..]).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("server is not an EC2 dock (registered with register-dock")
                && err.contains("`unregister-dock server` removes it"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("no longer exists"), "{args:?}: {err}");
        assert!(
            dir.join("connection_config.txt").is_file(),
            "{args:?} kept the registration"
        );
    }
}

#[test]
fn ctrl_c_while_waiting_leaves_nothing_half_registered() {
    let aws = moto();
    let ami = aws.ami_named("slow");
    // AWS answers RunInstances, then takes its time to say how the instance is doing.
    aws.delay(&["DescribeInstances"]);
    aws.actions();
    let mut child = aws
        .cmd("create-dock")
        .args(["-m", "slow", "-a", &ami, "-y"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !aws.dir.path().join("actions.log").exists()
        || !std::fs::read_to_string(aws.dir.path().join("actions.log"))
            .unwrap()
            .contains("DescribeInstances")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "create-dock never started waiting"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let code = wait_exit(&mut child, Duration::from_secs(10), || {});
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, Some(130), "Ctrl-C ends the wait at once: {err}");
    let ids = aws.boto(
        "out = [i['InstanceId'] for r in ec2.describe_instances(Filters=[{'Name': 'tag:Name', 'Values': ['tester-slow']}])['Reservations'] for i in r['Instances']]",
    );
    let id = ids[0].as_str().unwrap();
    assert!(
        err.contains(&format!("instance {id} was created")) && err.contains("not registered"),
        "{err}"
    );
    assert!(err.contains(&format!("destroy-dock {id}")), "{err}");
    let registrations: Vec<_> = std::fs::read_dir(aws.home().join(".docker"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        registrations.is_empty(),
        "nothing registered: {registrations:?}"
    );

    // What the message says works: the unregistered instance can be destroyed by id.
    aws.delay(&[]);
    let out = ok(aws.cmd("destroy-dock").args(["-y", id]).output().unwrap());
    assert!(out.contains(&format!("Terminated instance {id}")), "{out}");
    assert_eq!(aws.instance(id)["State"]["Name"], "terminated");
}

fn built(project: &Project, image: &str) {
    let out = project.cmd("build-image").arg(image).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn publish_image_to_ecr_logs_in_creates_the_repository_and_pushes() {
    require_engine();
    let aws = moto();
    let reg = registry();
    let project = Project::new("publish-ecr");
    project.dockerfile("prod", BUSYBOX_DOCKERFILE).cfg(&format!(
        "[prod]\nimage_repo=aws\npublication_tag=127.0.0.1:{}/{{image}}:{{tag}}-$RELEASE\n",
        reg.port
    ));
    built(&project, "prod");
    aws.ecr_registry(&format!("127.0.0.1:{}", reg.port));
    let name = format!("{}-prod", project.name);
    let mut cmd = aws.cmd("publish-image");
    cmd.arg("prod")
        .current_dir(&project.root)
        .env("RELEASE", "r7");
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The password went on stdin: it is never printed, and never in docker's argv.
    assert!(
        err.contains(&format!(
            "docker login --username AWS --password-stdin 127.0.0.1:{} <<< ****",
            reg.port
        )),
        "{err}"
    );
    let token = aws.boto(
        "import base64\nt = ecr.get_authorization_token()['authorizationData'][0]['authorizationToken']\nout = base64.b64decode(t).decode().split(':', 1)[1]",
    );
    assert!(!err.contains(token.as_str().unwrap()), "{err}");
    assert!(
        err.contains(&format!("Created ECR repository {name}")),
        "{err}"
    );
    let tags = reg.get(&format!("/v2/{name}/tags/list"));
    let tags: Value = serde_json::from_str(&tags).unwrap_or_else(|_| panic!("{tags}"));
    assert_eq!(tags["tags"], serde_json::json!([format!("{USER}-r7")]));
    let repos = aws
        .boto("out = [r['repositoryName'] for r in ecr.describe_repositories()['repositories']]");
    assert_eq!(repos, serde_json::json!([name]));
    let actions = aws.actions();
    assert!(
        actions.contains(&"GetAuthorizationToken".to_string()),
        "{actions:?}"
    );
    assert!(
        !actions.contains(&"GetCallerIdentity".to_string()),
        "no {{account}} in the tag: no STS call"
    );

    // Again: the repository exists, which is fine.
    let out = aws
        .cmd("publish-image")
        .arg("prod")
        .current_dir(&project.root)
        .env("RELEASE", "r8")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("Created ECR repository"));
    let _ = Command::new("docker")
        .args([
            "rmi",
            &format!("127.0.0.1:{}/{name}:{USER}-r7", reg.port),
            &format!("127.0.0.1:{}/{name}:{USER}-r8", reg.port),
        ])
        .output();
}

#[test]
fn publish_image_account_and_region_and_dry_run() {
    require_engine();
    let aws = moto();
    let project = Project::new("publish-dry");
    project
        .dockerfile("prod", BUSYBOX_DOCKERFILE)
        .cfg("[prod]\nimage_repo=aws\npublication_tag={account}.dkr.ecr.{region}.amazonaws.com/{image}:{user}\n");
    built(&project, "prod");
    let out = aws
        .cmd("publish-image")
        .args(["prod", "--dry-run"])
        .current_dir(&project.root)
        .output()
        .unwrap();
    let shown = ok(out);
    let account = aws.boto("out = boto3.client('sts').get_caller_identity()['Account']");
    let tag = format!(
        "{}.dkr.ecr.us-east-1.amazonaws.com/{}-prod:{USER}",
        account.as_str().unwrap(),
        project.name
    );
    assert!(
        shown.contains(&format!("docker tag {}-prod:{USER} {tag}", project.name)),
        "{shown}"
    );
    assert!(shown.contains(&format!("docker push {tag}")), "{shown}");
    assert!(shown.contains("<<< ****"), "{shown}");
    let repos = aws.boto("out = ecr.describe_repositories()['repositories']");
    assert_eq!(repos, serde_json::json!([]), "a dry run creates nothing");
}

#[test]
fn publish_image_to_a_registry_and_bad_cfg() {
    require_engine();
    let reg = registry();
    let project = Project::new("publish-reg");
    project
        .dockerfile("api", BUSYBOX_DOCKERFILE)
        .dockerfile("other", BUSYBOX_DOCKERFILE)
        .dockerfile("hub", BUSYBOX_DOCKERFILE)
        .cfg(&format!(
        "[api]\nimage_repo=registry\npublication_tag=127.0.0.1:{}/team/api:{{tag}}\n[other]\nimage_repo=s3\npublication_tag=x\n[hub]\nimage_repo=docker_hub\npublication_tag=127.0.0.1:{}/org/{{image}}:1.0\n",
        reg.port, reg.port
    ));
    built(&project, "api");
    let out = project.cmd("publish-image").arg("api").output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("docker login"),
        "no login for a plain registry: {err}"
    );
    let tags = reg.get("/v2/team/api/tags/list");
    assert!(tags.contains(&format!("\"{USER}\"")), "{tags}");
    // Removed once no test of this binary builds (see common::Cleanup).
    common::cleanup().remove_later([format!("127.0.0.1:{}/team/api:{USER}", reg.port)]);

    // docker_hub: the same tag and push (login is docker's credential store's business).
    built(&project, "hub");
    let out = project.cmd("publish-image").arg("hub").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hub = format!("{}-hub", project.name);
    assert!(
        reg.get(&format!("/v2/org/{hub}/tags/list"))
            .contains("\"1.0\"")
    );
    // Removed once no test of this binary builds (see common::Cleanup).
    common::cleanup().remove_later([format!("127.0.0.1:{}/org/{hub}:1.0", reg.port)]);

    let out = project.cmd("publish-image").arg("other").output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("image_repo=s3")
            && err.contains("image_repo=aws, image_repo=docker_hub, image_repo=registry"),
        "{err}"
    );
    let out = project.cmd("publish-image").arg("nope").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("valid images: api, hub, other"),
        "{}",
        text(&out.stderr)
    );
    // Not built: a clear error before anything else.
    let out = project
        .cmd("publish-image")
        .args(["api", "-i", "never-built"])
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("never-built:tester` is not in the local engine"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_image_latest_finds_the_newest_timestamp_tag_in_ecr() {
    require_engine();
    let aws = moto();
    let reg = registry();
    let project = Project::new("ecrlatest");
    let name = format!("{}-app", project.name);
    project
        .dockerfile("app", &format!("{BUSYBOX_DOCKERFILE}COPY v.txt /v.txt\n"))
        .file("v.txt", "from ecr\n")
        .cfg(&format!(
            "[app]\ntag=timestamp\nimage_repo=aws\npublication_tag=127.0.0.1:{}/{{image}}:{{tag}}\n",
            reg.port
        ));
    built(&project, "app");
    // The newest build lives in the registry (pushed there under a later time) and ECR
    // lists it; here only an older build remains.
    let newer = "20991231T235959Z";
    let remote = format!("127.0.0.1:{}/{name}:{newer}", reg.port);
    let here = Command::new("docker")
        .args(["images", "--format", "{{.Tag}}", &name])
        .output()
        .unwrap();
    let here = text(&here.stdout).trim().to_string();
    for args in [
        vec!["tag", &format!("{name}:{here}"), &remote],
        vec!["push", &remote],
        vec!["rmi", &remote],
    ] {
        let out = Command::new("docker").args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    aws.boto(&format!(
        "ecr.create_repository(repositoryName='{name}')\n\
         m = json.dumps({{'schemaVersion': 2, 'mediaType': 'application/vnd.docker.distribution.manifest.v2+json', 'config': {{'digest': 'sha256:' + '0' * 64}}, 'layers': []}})\n\
         ecr.put_image(repositoryName='{name}', imageManifest=m, imageTag='{newer}')\n\
         out = 1"
    ));
    aws.actions();
    let out = aws
        .cmd("run-image")
        .args(["app", "--latest", "-c", "cat /v.txt"])
        .current_dir(&project.root)
        .output()
        .unwrap();
    let all = text(&out.stderr) + &text(&out.stdout);
    assert!(out.status.success(), "{all}");
    assert!(all.contains(&format!("docker pull {remote}")), "{all}");
    assert!(all.contains("from ecr"), "{all}");
    assert!(aws.actions().contains(&"ListImages".to_string()));
    // Removed once no test of this binary builds (see common::Cleanup).
    common::cleanup().remove_later([format!("{name}:{newer}"), remote]);
}

/// With image_repo=aws the ECR token goes only to ECR's own registry (the proxy endpoint
/// of the authorization data): a publication_tag on another host, or none (Docker Hub),
/// is refused before any login, tag, push or repository is made.
#[test]
fn publish_image_to_ecr_never_logs_in_to_another_host() {
    require_engine();
    let aws = moto();
    let project = Project::new("publish-evil");
    project.dockerfile("prod", BUSYBOX_DOCKERFILE);
    built(&project, "prod");
    for tag in ["evil.example.com/x:{tag}", "myorg/{image}:{tag}"] {
        project.cfg(&format!("[prod]\nimage_repo=aws\npublication_tag={tag}\n"));
        for dry in [false, true] {
            let mut cmd = aws.cmd("publish-image");
            cmd.arg("prod").current_dir(&project.root);
            if dry {
                cmd.arg("--dry-run");
            }
            let out = cmd.output().unwrap();
            let all = text(&out.stderr) + &text(&out.stdout);
            assert_eq!(out.status.code(), Some(2), "{tag}: {all}");
            assert!(
                all.contains("with image_repo=aws the ECR login is for")
                    && !all.contains("docker login"),
                "{tag}: {all}"
            );
        }
    }
    let repos = aws.boto("out = ecr.describe_repositories()['repositories']");
    assert_eq!(repos, serde_json::json!([]), "nothing was created");
}

/// Two instances in two VPCs with the same private IP, and a dock registered by that IP
/// alone: stop-dock and destroy-dock refuse and list both, and neither is touched.
#[test]
fn a_dock_ip_shared_by_two_instances_is_never_guessed() {
    let aws = moto();
    let ids = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         out = []\n\
         for n in range(2):\n\
         \x20   vpc = ec2.create_vpc(CidrBlock='10.7.0.0/16')['Vpc']['VpcId']\n\
         \x20   sub = ec2.create_subnet(VpcId=vpc, CidrBlock='10.7.1.0/24')['Subnet']['SubnetId']\n\
         \x20   out.append(ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, SubnetId=sub, PrivateIpAddress='10.7.1.9')['Instances'][0]['InstanceId'])",
    );
    let ids: Vec<String> = serde_json::from_value(ids).unwrap();
    let dir = aws.home().join(".docker/10.7.1.9");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        "DOCK_USER=ubuntu\nDOCK_MONIKER=twin\nDOCK_HOSTNAME=10.7.1.9\nDOCK_IP=10.7.1.9\n",
    )
    .unwrap();
    for program in ["stop-dock", "destroy-dock"] {
        let out = aws.cmd(program).args(["twin", "-y"]).output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{program}: {err}");
        assert!(
            err.contains("2 instances have the IP 10.7.1.9")
                && ids.iter().all(|id| err.contains(id.as_str()))
                && err.contains("DOCK_INSTANCE_ID="),
            "{program}: {err}"
        );
    }
    let states = aws.boto(&format!(
        "out = sorted(i['State']['Name'] for r in ec2.describe_instances(InstanceIds={ids:?})['Reservations'] for i in r['Instances'])"
    ));
    assert_eq!(states, serde_json::json!(["running", "running"]));
    assert!(
        dir.join("connection_config.txt").is_file(),
        "still registered"
    );
}

/// The user data of a RunInstances request, decoded.
fn user_data(request: &Value) -> String {
    use base64::Engine;
    let encoded = request["UserData"].as_str().expect("UserData");
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

/// The registered instance id of the dock `moniker` (in its connection_config.txt).
fn registered_id(aws: &common::moto::Moto, moniker: &str) -> String {
    std::fs::read_dir(aws.home().join(".docker"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("connection_config.txt")).ok())
        .find(|reg| reg.contains(&format!("DOCK_MONIKER={moniker}\n")))
        .map(|reg| value_of(&reg, "DOCK_INSTANCE_ID"))
        .unwrap_or_else(|| panic!("no dock {moniker} registered"))
}

#[test]
fn create_dock_launches_a_spot_dock_that_stops_and_carries_the_idle_watcher() {
    let aws = moto();
    let ami = aws.ami_named("cheap-ami");
    std::fs::create_dir_all(aws.home().join(".docker")).unwrap();
    std::fs::write(
        aws.home().join(".docker/dock.cfg"),
        "spot=yes\nidle_stop=\"2h\"\n",
    )
    .unwrap();
    let watcher = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/templates/dockerutils-idle"
    ))
    .unwrap();

    // A limit that is no duration is refused before AWS is asked anything.
    let out = aws
        .cmd("create-dock")
        .args(["-m", "cheap", "-a", &ami, "--idle-stop", "1h; reboot", "-y"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(aws.actions().is_empty());

    let shown = ok(aws
        .cmd("create-dock")
        .args(["-m", "cheap", "-a", &ami, "--idle-stop", "90m", "--dry-run"])
        .output()
        .unwrap());
    let words = shown.split_whitespace().collect::<Vec<_>>().join(" ");
    for row in [
        "Market spot (a persistent request: an interruption stops the dock",
        "Shut down from inside stop (never terminate)",
        "Idle stop after 1h30m with no ssh session",
        "Termination protection off (EC2 has none for spot instances)",
    ] {
        assert!(words.contains(row), "{row}\n{shown}");
    }
    assert!(!aws.actions().contains(&"RunInstances".to_string()));

    // dock.cfg's spot, the flag's limit.
    ok(aws
        .cmd("create-dock")
        .args(["-m", "cheap", "-a", &ami, "--idle-stop", "90m", "-y"])
        .output()
        .unwrap());
    let asked = aws.requests("RunInstances");
    assert_eq!(asked.len(), 1, "{asked:?}");
    let r = &asked[0];
    assert_eq!(r["InstanceMarketOptions.MarketType"], "spot");
    assert_eq!(
        r["InstanceMarketOptions.SpotOptions.SpotInstanceType"],
        "persistent"
    );
    assert_eq!(
        r["InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior"],
        "stop"
    );
    assert_eq!(r["InstanceInitiatedShutdownBehavior"], "stop");
    assert_eq!(r["DisableApiTermination"], "false", "{r}");
    let data = user_data(r);
    assert!(data.starts_with("#!/bin/sh\n"), "{data}");
    assert!(data.contains(&watcher), "the watcher, whole");
    assert!(data.ends_with("install 5400\n"), "{data}");
    let id = registered_id(&aws, "cheap");
    let inst = aws.instance(&id);
    assert_eq!(inst["InstanceLifecycle"], "spot");
    assert_eq!(inst["Protected"], false);
    assert!(
        !aws.actions()
            .contains(&"ModifyInstanceAttribute".to_string()),
        "no termination protection asked for a spot instance"
    );
    let stored = aws.boto(&format!(
        "import base64\nv = ec2.describe_instance_attribute(InstanceId='{id}', Attribute='userData')['UserData']['Value']\nout = base64.b64decode(v).decode()"
    ));
    assert_eq!(stored.as_str(), Some(data.as_str()));

    // On-demand despite dock.cfg, and never stopped by the watcher.
    ok(aws
        .cmd("create-dock")
        .args([
            "-m",
            "steady",
            "-a",
            &ami,
            "--on-demand",
            "--idle-stop",
            "off",
            "-y",
        ])
        .output()
        .unwrap());
    let asked = aws.requests("RunInstances");
    let r = &asked[1];
    assert!(
        r.as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("InstanceMarketOptions")),
        "{r}"
    );
    assert_eq!(r["InstanceInitiatedShutdownBehavior"], "stop");
    assert_eq!(r["DisableApiTermination"], "true");
    assert!(user_data(r).ends_with("install off\n"));
    let inst = aws.instance(&registered_id(&aws, "steady"));
    assert_eq!(inst["Protected"], true);
    assert!(inst.get("InstanceLifecycle").is_none(), "{inst}");
}

#[test]
fn destroying_a_spot_dock_cancels_its_persistent_request_first() {
    let aws = moto();
    let spot = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         r = ec2.request_spot_instances(SpotPrice='0.5', InstanceCount=1, Type='persistent', LaunchSpecification={'ImageId': img, 'InstanceType': 't3.micro'})['SpotInstanceRequests'][0]\n\
         req = ec2.describe_spot_instance_requests(SpotInstanceRequestIds=[r['SpotInstanceRequestId']])['SpotInstanceRequests'][0]\n\
         i = ec2.describe_instances(InstanceIds=[req['InstanceId']])['Reservations'][0]['Instances'][0]\n\
         out = [req['SpotInstanceRequestId'], i['InstanceId'], i['PrivateIpAddress']]",
    );
    let (request, id, ip) = (
        spot[0].as_str().unwrap(),
        spot[1].as_str().unwrap(),
        spot[2].as_str().unwrap(),
    );
    let dir = aws.home().join(".docker").join(ip);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("connection_config.txt"),
        format!("DOCK_USER=ubuntu\nDOCK_MONIKER=spotty\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\nDOCK_INSTANCE_ID={id}\n"),
    )
    .unwrap();
    let out = ok(aws
        .cmd("destroy-dock")
        .args(["spotty", "-y"])
        .output()
        .unwrap());
    assert!(
        out.contains(&format!("Cancelled spot request {request}")),
        "{out}"
    );
    let actions = aws.actions();
    let at = |a: &str| actions.iter().position(|x| x == a);
    assert!(
        at("CancelSpotInstanceRequests").unwrap() < at("TerminateInstances").unwrap(),
        "{actions:?}"
    );
    assert_eq!(at("ModifyInstanceAttribute"), None, "{actions:?}");
    // moto forgets a cancelled request (AWS lists it as cancelled): none may be left open.
    let left = aws.boto(&format!(
        "out = [r['State'] for r in ec2.describe_spot_instance_requests()['SpotInstanceRequests'] if r['SpotInstanceRequestId'] == '{request}' and r['State'] != 'cancelled']"
    ));
    assert_eq!(left, serde_json::json!([]));
    assert_eq!(aws.instance(id)["State"]["Name"], "terminated");
    assert!(!dir.exists());
}

/// A cell of an ls-dock listing: the row whose NAME is `name`, the column `column`.
fn cell(listing: &str, name: &str, column: &str) -> String {
    let header = listing.lines().next().unwrap();
    let at = header
        .find(column)
        .unwrap_or_else(|| panic!("{column} in {header}"));
    let row = listing
        .lines()
        .find(|l| l.get(2..).and_then(|l| l.split_whitespace().next()) == Some(name))
        .unwrap_or_else(|| panic!("{name} in\n{listing}"));
    row.chars()
        .skip(header[..at].chars().count())
        .collect::<String>()
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn ls_dock_shows_lifecycle_uptime_and_what_a_dock_costs() {
    let aws = moto();
    let ids = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         od = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, InstanceType='t3.micro')['Instances'][0]['InstanceId']\n\
         spot = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, InstanceType='c5.large', InstanceMarketOptions={'MarketType': 'spot', 'SpotOptions': {'SpotInstanceType': 'persistent', 'InstanceInterruptionBehavior': 'stop'}})['Instances'][0]['InstanceId']\n\
         off = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, InstanceType='t3.micro')['Instances'][0]['InstanceId']\n\
         ec2.stop_instances(InstanceIds=[off])\n\
         out = [od, spot, off]",
    );
    let id = |n: usize| ids[n].as_str().unwrap().to_string();
    for (n, (ip, moniker)) in [
        ("10.20.0.1", "ondemand"),
        ("10.20.0.2", "spotty"),
        ("10.20.0.3", "parked"),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = aws.home().join(".docker").join(ip);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("connection_config.txt"),
            format!(
                "DOCK_USER=ubuntu\nDOCK_MONIKER={moniker}\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\nDOCK_INSTANCE_ID={}\n",
                id(n)
            ),
        )
        .unwrap();
    }
    let ls = || {
        let out = aws
            .cmd("ls-dock")
            .args(["--timeout", "0.5"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };

    // The Price List cannot be reached (moto has none): a warning, no price, no failure.
    aws.actions();
    let (listing, err) = ls();
    assert!(err.contains("no price from AWS's Price List"), "{err}");
    assert_eq!(cell(&listing, "ondemand", "$/H"), "-", "{listing}");
    assert_eq!(cell(&listing, "ondemand", "LIFECYCLE"), "on-demand");
    assert_eq!(cell(&listing, "spotty", "LIFECYCLE"), "spot");
    assert_eq!(cell(&listing, "parked", "STATE"), "stopped");
    assert_eq!(cell(&listing, "parked", "UPTIME"), "-");
    let uptime = cell(&listing, "ondemand", "UPTIME");
    assert!(uptime.ends_with('s') || uptime.ends_with('m'), "{listing}");
    // The moto instances' addresses do not answer ssh: `?`, after --timeout.
    assert_eq!(cell(&listing, "ondemand", "IDLE"), "?", "{listing}");
    assert_eq!(
        cell(&listing, "parked", "IDLE"),
        "-",
        "a stopped dock is not asked"
    );
    let actions = aws.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "DescribeInstances").count(),
        1,
        "{actions:?}"
    );

    // The Price List answers: each type is asked once, in the region, then cached a day.
    std::fs::remove_file(aws.home().join(".cache/dockerutils/prices.json")).unwrap();
    aws.price_list_answers("0.0104000000");
    let before = aws.requests("GetProducts").len();
    let (listing, err) = ls();
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(cell(&listing, "ondemand", "$/H"), "0.0104", "{listing}");
    assert_eq!(cell(&listing, "ondemand", "COST"), "0.00", "{listing}");
    assert_eq!(
        cell(&listing, "spotty", "$/H"),
        "≤0.0104",
        "on-demand's price is a spot dock's most"
    );
    assert_eq!(cell(&listing, "parked", "COST"), "-");
    let mut asked: Vec<String> = aws.requests("GetProducts")[before..]
        .iter()
        .map(|r| {
            let filters = r["Filters"].as_array().unwrap();
            let field = |f: &str| {
                filters
                    .iter()
                    .find(|x| x["Field"] == f)
                    .map(|x| x["Value"].as_str().unwrap().to_string())
                    .unwrap()
            };
            assert_eq!(field("regionCode"), "us-east-1");
            assert_eq!(field("operatingSystem"), "Linux");
            field("instanceType")
        })
        .collect();
    asked.sort();
    assert_eq!(asked, ["c5.large", "t3.micro"]);
    aws.actions();
    ls();
    assert_eq!(
        aws.actions(),
        ["DescribeInstances"],
        "prices come from the cache"
    );

    // dock.cfg's price is the price, asked of nobody.
    std::fs::write(
        aws.home().join(".docker/dock.cfg"),
        "price_per_hour=\"c5.large=0.25\"\n",
    )
    .unwrap();
    std::fs::remove_file(aws.home().join(".cache/dockerutils/prices.json")).unwrap();
    let (listing, _) = ls();
    assert_eq!(cell(&listing, "spotty", "$/H"), "0.25", "{listing}");
    let actions = aws.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "GetProducts").count(),
        1,
        "t3.micro only: {actions:?}"
    );
}

#[test]
fn docks_registered_without_ec2_list_without_asking_aws() {
    let aws = moto();
    let ip = aws.boto(
        "img = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
         out = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1)['Instances'][0]['PrivateIpAddress']",
    );
    let ip = ip.as_str().unwrap();
    for (ip, moniker) in [("192.168.50.2", "server"), (ip, "by-ip")] {
        let dir = aws.home().join(".docker").join(ip);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("connection_config.txt"),
            format!("DOCK_USER=ubuntu\nDOCK_MONIKER={moniker}\nDOCK_HOSTNAME={ip}\nDOCK_IP={ip}\n"),
        )
        .unwrap();
    }
    // No region, no credentials: no EC2 dock to ask about, so no AWS error either.
    let out = aws
        .cmd("ls-dock")
        .env_remove("AWS_REGION")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", aws.home().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            aws.home().join("no-credentials"),
        )
        .output()
        .unwrap();
    let (listing, err) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{listing}{err}");
    assert!(!err.contains("error") && !err.contains("AWS"), "{err}");
    for name in ["server", "by-ip"] {
        assert_eq!(cell(&listing, name, "STATE"), "unmanaged", "{listing}");
        assert_eq!(cell(&listing, name, "IDLE"), "-", "{listing}");
    }
    // AWS configured: still nothing to ask.
    ok(aws.cmd("ls-dock").output().unwrap());
    assert_eq!(aws.actions(), Vec::<String>::new());
    // --region names AWS: it is asked, and a dock registered by the IP of an instance is
    // that instance (2.0.7's register-dock registered EC2 instances so).
    let listing = ok(aws
        .cmd("ls-dock")
        .args(["--region", "us-east-1", "--timeout", "0.2"])
        .output()
        .unwrap());
    assert_eq!(cell(&listing, "by-ip", "STATE"), "running", "{listing}");
    assert_eq!(cell(&listing, "server", "STATE"), "unmanaged", "{listing}");
    let actions = aws.actions();
    assert_eq!(actions[0], "DescribeInstances", "{actions:?}");
}
