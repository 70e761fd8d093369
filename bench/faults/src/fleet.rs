//! The fleet as separate processes, and the shared services they depend on: what the fault
//! suite kills, restarts and counts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Gateway,
    AiWorker,
    Dispatcher,
    Listener,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::AiWorker => "ai-worker",
            Role::Dispatcher => "dispatcher",
            Role::Listener => "listener",
        }
    }
}

struct Proc {
    role: Role,
    n: usize,
    child: Child,
}

/// The gateway, two AI workers, two dispatchers and two listeners (one holds the mailbox's
/// lease, the other stands by), each its own process with
/// the same configuration (environment), logging to `<log_dir>/<role>-<n>.log`.
pub struct Fleet {
    bin_dir: PathBuf,
    pub log_dir: PathBuf,
    env: Vec<(String, String)>,
    procs: Vec<Proc>,
    /// Processes that ended without being killed, restarted as a supervisor would.
    pub exited: u32,
}

pub const LAYOUT: &[(Role, usize)] = &[
    (Role::Gateway, 0),
    (Role::AiWorker, 0),
    (Role::AiWorker, 1),
    (Role::Dispatcher, 0),
    (Role::Dispatcher, 1),
    (Role::Listener, 0),
    (Role::Listener, 1),
];

impl Fleet {
    pub fn start(
        bin_dir: PathBuf,
        log_dir: PathBuf,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&log_dir)?;
        let log_dir = log_dir.canonicalize()?;
        let mut fleet = Self {
            bin_dir,
            log_dir,
            env,
            procs: Vec::new(),
            exited: 0,
        };
        for &(role, n) in LAYOUT {
            let child = fleet.spawn(role, n)?;
            fleet.procs.push(Proc { role, n, child });
        }
        Ok(fleet)
    }

    fn spawn(&self, role: Role, n: usize) -> anyhow::Result<Child> {
        // One binary: each role is a subcommand.
        let (program, args): (&str, &[&str]) = ("switchboard", &[role.name()]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{}-{n}.log", role.name())))?;
        Command::new(self.bin_dir.join(program))
            .args(args)
            // Not the checkout: a `config/default.toml` there is read by the binaries, and
            // one edited during a run must not change the fleet's configuration.
            .current_dir(&self.log_dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin_dir.join(program).display()))
    }

    /// Indexes of the processes of `role`.
    pub fn of(&self, role: Role) -> Vec<usize> {
        (0..self.procs.len())
            .filter(|&i| self.procs[i].role == role)
            .collect()
    }

    /// SIGKILL, then a fresh process in its place: what a crash and a supervisor do.
    pub async fn kill_and_restart(&mut self, i: usize) -> anyhow::Result<String> {
        let p = &mut self.procs[i];
        p.child.start_kill()?;
        p.child.wait().await?;
        let (role, n) = (p.role, p.n);
        let what = format!("SIGKILL {}-{n}", role.name());
        self.procs[i].child = self.spawn(role, n)?;
        Ok(what)
    }

    /// Restarts every process that ended on its own.
    pub fn supervise(&mut self) -> anyhow::Result<()> {
        for i in 0..self.procs.len() {
            if self.procs[i].child.try_wait()?.is_some() {
                self.exited += 1;
                let (role, n) = (self.procs[i].role, self.procs[i].n);
                eprintln!("{}-{n} exited on its own; restarting it", role.name());
                self.procs[i].child = self.spawn(role, n)?;
            }
        }
        Ok(())
    }

    pub async fn stop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.start_kill();
            let _ = p.child.wait().await;
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Service {
    RabbitMq,
    PostgreSql,
    Redis,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::RabbitMq => "RabbitMQ",
            Service::PostgreSql => "PostgreSQL",
            Service::Redis => "Redis",
        }
    }

    fn port(self) -> u16 {
        match self {
            Service::RabbitMq => 5672,
            Service::PostgreSql => 5432,
            Service::Redis => 6379,
        }
    }

    /// The restart commands of the project's brief.
    fn script(self) -> &'static str {
        match self {
            Service::RabbitMq => "rabbitmqctl stop >/dev/null 2>&1; rabbitmq-server -detached",
            Service::PostgreSql => {
                "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main restart"
            }
            Service::Redis => {
                "redis-cli -p 6379 shutdown nosave >/dev/null 2>&1; \
                 while (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; do sleep 0.1; done; \
                 redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' \
                   --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
            }
        }
    }

    /// Restarts the service and waits until it takes connections again; returns how long
    /// it was away.
    /// The script's output goes to `log`: the daemons it starts keep what they inherit,
    /// and must not hold this process's own output open.
    pub async fn restart(self, log: &Path) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let status = Command::new("bash")
            .args(["-c", self.script()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()
            .await?;
        if !status.success() {
            bail!("restarting {} failed ({status})", self.name());
        }
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port()))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(180) {
                bail!("{} did not come back within three minutes", self.name());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(started.elapsed())
    }
}
