//! The AWS API emulator of the AWS tests: a `moto` server on 127.0.0.1 (from the venv
//! `bash tests/run.sh` installs, `DOCKERUTILS_MOTO_VENV`), reached through
//! tests/aws-proxy.py, which logs each API action (to count calls) and can hold chosen
//! actions (a slow AWS, to interrupt a wait). The state in moto is checked with boto3,
//! independently of our code.

use super::{Helper, USER, bin_dir, free_port, wait_listening};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A moto server with the proxy in front, and a home of its own.
pub(crate) struct Moto {
    pub venv: PathBuf,
    pub moto_url: String,
    pub proxy_url: String,
    pub dir: tempfile::TempDir,
    _moto: Helper,
    _proxy: Helper,
}

pub(crate) fn moto() -> Moto {
    let venv = PathBuf::from(std::env::var("DOCKERUTILS_MOTO_VENV").expect(
        "DOCKERUTILS_MOTO_VENV is not set: run the tests with `bash tests/run.sh`, which installs moto",
    ));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    let moto_port = free_port();
    let mut moto = Command::new(venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &moto_port.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("moto.log")).unwrap())
        .spawn()
        .expect("moto_server");
    wait_listening(moto_port, "moto_server", &mut moto);
    let moto = Helper(moto);
    let proxy_port = free_port();
    let mut proxy = Command::new(venv.join("bin/python"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws-proxy.py"))
        .args(["--listen", &proxy_port.to_string()])
        .args(["--upstream", &format!("http://127.0.0.1:{moto_port}")])
        .arg("--log")
        .arg(dir.path().join("actions.log"))
        .arg("--delay-file")
        .arg(dir.path().join("delay"))
        .arg("--ecr-registry-file")
        .arg(dir.path().join("ecr-registry"))
        .arg("--bodies")
        .arg(dir.path().join("bodies.jsonl"))
        .arg("--answers")
        .arg(dir.path().join("answers"))
        .spawn()
        .expect("aws-proxy.py");
    wait_listening(proxy_port, "aws-proxy.py", &mut proxy);
    Moto {
        venv,
        moto_url: format!("http://127.0.0.1:{moto_port}"),
        proxy_url: format!("http://127.0.0.1:{proxy_port}"),
        dir,
        _moto: moto,
        _proxy: Helper(proxy),
    }
}

impl Moto {
    pub(crate) fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// One of our commands, as a user with AWS credentials for the emulator.
    pub(crate) fn cmd(&self, program: &str) -> Command {
        self.with_env(Command::new(bin_dir().join(program)))
    }

    /// A shell command line, with the same environment.
    pub(crate) fn shell(&self, line: &str) -> Command {
        let mut sh = Command::new("sh");
        sh.args(["-c", line]);
        self.with_env(sh)
    }

    pub(crate) fn with_env(&self, mut cmd: Command) -> Command {
        let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap());
        cmd.env("HOME", self.home())
            .env("PATH", path)
            .env("USER", USER)
            .env("LOGNAME", USER)
            .env("AWS_ENDPOINT_URL", &self.proxy_url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        for var in [
            "AWS_PROFILE",
            "AWS_DEFAULT_REGION",
            "AWS_SESSION_TOKEN",
            "DOCKER_HOST",
            "DOCKER_IP",
            "DOCK_USER",
            "DOCKERUTILS_ANY_REGION",
            "DOCKERUTILS_IDLE_ROOT",
            "XDG_CACHE_HOME",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Runs a Python snippet with boto3 against moto directly (not through the proxy, so
    /// it does not count); `ec2`, `ecr`, `json` are ready; the snippet sets `out`.
    pub(crate) fn boto(&self, code: &str) -> Value {
        let script = format!(
            "import boto3, json\nec2 = boto3.client('ec2')\necr = boto3.client('ecr')\nout = None\n{code}\nprint(json.dumps(out, default=str))\n"
        );
        let out = Command::new(self.venv.join("bin/python"))
            .args(["-c", &script])
            .env("AWS_ENDPOINT_URL", &self.moto_url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("HOME", self.home())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The API actions made through the proxy since the last call, in order.
    pub(crate) fn actions(&self) -> Vec<String> {
        let log = self.dir.path().join("actions.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        text.lines().map(str::to_string).collect()
    }

    /// The parameters of every `action` request made through the proxy so far, in order
    /// (EC2's query parameters as one flat object: `{"InstanceType": "t3.micro", …}`).
    pub(crate) fn requests(&self, action: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("bodies.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["action"] == action)
            .map(|v| {
                if v["params"].is_object() {
                    v["params"].clone()
                } else {
                    v["json"].clone()
                }
            })
            .collect()
    }

    /// From now on the proxy answers `action` with this JSON itself (an API moto lacks).
    pub(crate) fn answer(&self, action: &str, json: &Value) {
        let dir = self.dir.path().join("answers");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{action}.json")), json.to_string()).unwrap();
    }

    /// The Price List's answer to GetProducts for an hourly on-demand price (its shape as
    /// AWS documents it, one product).
    pub(crate) fn price_list_answers(&self, usd_per_hour: &str) {
        let product = serde_json::json!({
            "product": {"productFamily": "Compute Instance", "attributes": {"operatingSystem": "Linux"}},
            "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {"priceDimensions": {
                "SKU1.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "description": "On Demand Linux", "pricePerUnit": {"USD": usd_per_hour}}
            }}}}
        });
        self.answer(
            "GetProducts",
            &serde_json::json!({"FormatVersion": "aws_v1", "PriceList": [product.to_string()]}),
        );
    }

    /// ECR's registry, as GetAuthorizationToken answers it, is this host from now on
    /// (a real registry on 127.0.0.1 stands in for it).
    pub(crate) fn ecr_registry(&self, host: &str) {
        std::fs::write(self.dir.path().join("ecr-registry"), host).unwrap();
    }

    pub(crate) fn delay(&self, actions: &[&str]) {
        std::fs::write(self.dir.path().join("delay"), actions.join("\n")).unwrap();
    }

    /// An AMI tagged `Name=<name>`, made the way AWS users make one (from an instance).
    pub(crate) fn ami_named(&self, name: &str) -> String {
        let v = self.boto(&format!(
            "base = ec2.describe_images(Owners=['amazon'])['Images'][0]['ImageId']\n\
             i = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)['Instances'][0]['InstanceId']\n\
             img = ec2.create_image(InstanceId=i, Name='{name}-image')['ImageId']\n\
             ec2.create_tags(Resources=[img], Tags=[{{'Key': 'Name', 'Value': '{name}'}}])\n\
             ec2.terminate_instances(InstanceIds=[i])\n\
             out = img"
        ));
        v.as_str().unwrap().to_string()
    }

    pub(crate) fn instance(&self, id: &str) -> Value {
        self.boto(&format!(
            "r = ec2.describe_instances(InstanceIds=['{id}'])['Reservations'][0]['Instances'][0]\n\
             p = ec2.describe_instance_attribute(InstanceId='{id}', Attribute='disableApiTermination')\n\
             r['Protected'] = p['DisableApiTermination']['Value']\n\
             out = r"
        ))
    }

    pub(crate) fn registration(&self, ip: &str) -> Option<String> {
        std::fs::read_to_string(
            self.home()
                .join(".docker")
                .join(ip)
                .join("connection_config.txt"),
        )
        .ok()
    }
}
