//! A private RabbitMQ node for one test, so the test may stop and start its broker without
//! touching the shared one: its own node name, ports, data, logs, configuration and Erlang
//! cookie, all in a temporary directory; stopped and removed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the RabbitMQ scripts are. The Debian wrappers in `/usr/sbin` switch to the `rabbitmq`
/// user when run as root, which could not write our temporary directory, so the scripts they
/// wrap are preferred.
fn script(name: &str) -> PathBuf {
    let wrapped = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if wrapped.exists() {
        wrapped
    } else {
        PathBuf::from(name)
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running private node (RabbitMQ 3.10 with the management plugin).
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    node: String,
    dist_port: u16,
    /// AMQP port on 127.0.0.1.
    pub port: u16,
    /// Management API port on 127.0.0.1.
    pub management_port: u16,
}

impl PrivateBroker {
    /// Starts the node and waits until it accepts clients. A node that does not come up is
    /// stopped and started again once, in a new directory with new ports (a port taken between
    /// choosing and binding it, say).
    pub fn start() -> PrivateBroker {
        match PrivateBroker::try_start() {
            Ok(broker) => broker,
            Err(first) => {
                eprintln!("private broker did not start, trying once more: {first}");
                PrivateBroker::try_start().unwrap_or_else(|second| panic!("{second}"))
            }
        }
    }

    fn try_start() -> Result<PrivateBroker, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let node = format!("asw-{}@localhost", &tag[..12]);
        let (port, management_port) = (free_port(), free_port());
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!(
                "listeners.tcp.local = 127.0.0.1:{port}\nmanagement.tcp.ip = 127.0.0.1\n\
                 management.tcp.port = {management_port}\n"
            ),
        )
        .expect("rabbitmq.conf");
        std::fs::write(
            dir.path().join("enabled_plugins"),
            "[rabbitmq_management].\n",
        )
        .expect("enabled_plugins");
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").expect("rabbitmq-env.conf");
        for sub in ["mnesia", "log"] {
            std::fs::create_dir(dir.path().join(sub)).expect("folder");
        }
        let broker = PrivateBroker {
            dir,
            node,
            dist_port: free_port(),
            port,
            management_port,
        };
        let started = broker
            .command("rabbitmq-server")
            .arg("-detached")
            .output()
            .expect("rabbitmq-server (RabbitMQ is installed: deploy/setup.sh)");
        broker.check("rabbitmq-server -detached", &started)?;
        // `wait` follows the pid file until the node runs, then waits for the application.
        let pid_file = broker.pid_file();
        let waited = broker.ctl(&["wait", &pid_file.to_string_lossy(), "--timeout", "90"]);
        broker.check("rabbitmqctl wait", &waited)?;
        // Dropped on failure: stopped, its directory removed.
        Ok(broker)
    }

    /// `amqp://guest:guest@127.0.0.1:<port>`, without vhost.
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}", self.port)
    }

    /// The management API's URL.
    pub fn management_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.management_port)
    }

    /// Stops the RabbitMQ application (the Erlang node stays up): every client is disconnected
    /// and nothing listens until [`start_app`](Self::start_app).
    pub fn stop_app(&self) {
        let out = self.ctl(&["stop_app"]);
        self.expect_success("rabbitmqctl stop_app", &out);
    }

    /// Starts the application again; its durable queues come back with their messages.
    pub fn start_app(&self) {
        let out = self.ctl(&["start_app"]);
        self.expect_success("rabbitmqctl start_app", &out);
        let out = self.ctl(&["await_startup", "--timeout", "120"]);
        self.expect_success("rabbitmqctl await_startup", &out);
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("rabbitmq.pid")
    }

    /// `rabbitmqctl` on the node, ended after two minutes whatever it waits for.
    fn ctl(&self, args: &[&str]) -> Output {
        let mut command = self.command("timeout");
        command
            .arg("120")
            .arg(script("rabbitmqctl"))
            .args(["-n", &self.node])
            .args(args);
        command.output().expect("rabbitmqctl")
    }

    /// A RabbitMQ script with the node's environment: everything under our directory, and
    /// `HOME` there too so the Erlang cookie is ours.
    fn command(&self, name: &str) -> Command {
        let dir = self.dir.path();
        let program = if name == "timeout" {
            PathBuf::from(name)
        } else {
            script(name)
        };
        let mut command = Command::new(program);
        command
            .env("HOME", dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", self.pid_file())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .current_dir(dir);
        command
    }

    fn expect_success(&self, what: &str, out: &Output) {
        if let Err(e) = self.check(what, out) {
            panic!("{e}");
        }
    }

    fn check(&self, what: &str, out: &Output) -> Result<(), String> {
        if out.status.success() {
            return Ok(());
        }
        let crash = std::fs::read_to_string(self.dir.path().join("erl_crash.dump"))
            .map(|dump| dump.lines().take(3).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default();
        Err(format!(
            "{what} failed ({}): {}{}\nnode log:\n{}\n{crash}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = self
            .dir
            .path()
            .join("log")
            .join(format!("{}.log", self.node));
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let pid_file = self.pid_file();
        if !pid_file.exists() {
            // The node never ran (`stop` with a pid file would wait for it to appear).
            return;
        }
        let stopped = self.ctl(&["stop", &pid_file.to_string_lossy()]);
        if !stopped.status.success() {
            // The node did not answer: end the Erlang VM by its pid, not by name.
            if let Ok(pid) = std::fs::read_to_string(&pid_file) {
                let _ = Command::new("kill").args(["-9", pid.trim()]).status();
            }
        }
    }
}
