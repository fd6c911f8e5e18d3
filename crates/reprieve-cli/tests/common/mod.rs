//! Shared support for the `reprieve` binary's integration tests: the command with the developer's own settings
//! removed, run helpers, the arguments of the common subcommands, and a real `reprieve serve` process.

// Each test file uses only some of these.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fmt::Debug;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The `reprieve` binary, logging at info, with none of the developer's own settings leaking in.
pub fn reprieve() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reprieve"));
    c.env("RUST_LOG", "info");
    for name in [
        "REPRIEVE_CONFIG",
        "REPRIEVE_LISTEN",
        "REPRIEVE_MODEL",
        "REPRIEVE_ADMIN_TOKEN",
        "REPRIEVE_METRICS_LISTEN",
        "REPRIEVE_DATA_DIR",
        "REPRIEVE_AUDIT_DURABILITY",
        "REPRIEVE_TLS_CERT",
        "REPRIEVE_TLS_KEY",
        "REPRIEVE_TLS_CLIENT_CA",
    ] {
        c.env_remove(name);
    }
    c
}

/// Runs `reprieve args` to completion, whatever its exit.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    reprieve().args(args).output().expect("the binary runs")
}

/// Runs `reprieve args` and expects success.
pub fn run_ok<S: AsRef<OsStr> + Debug>(args: &[S]) -> Output {
    let out = run(args);
    assert!(out.status.success(), "reprieve {args:?}: {}", stderr(&out));
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The last stderr line of a failed run, which must be the one error line.
pub fn error_line(o: &Output) -> String {
    let err = stderr(o);
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("reprieve: error: "), "{err}");
    last
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// `reprieve score` of the inventory and log in `trace` at `at`, to `out`, auditing into `data`.
pub fn score_args(trace: &Path, at: i64, out: &Path, data: &Path) -> Vec<String> {
    owned(&[
        "score",
        "--inventory",
        arg(&trace.join("inventory.csv")),
        "--logs",
        arg(&trace.join("events.csv")),
        "--at",
        &at.to_string(),
        "--out",
        arg(out),
        "--data-dir",
        arg(data),
    ])
}

/// `reprieve train` on the trace in `trace` (weekly horizon and step, two calibration cuts), the model named
/// `name` written to `out`, with a `--feedback` option for each of `feedback`.
pub fn train_args(trace: &Path, name: &str, out: &Path, feedback: &[&Path]) -> Vec<String> {
    let mut a = owned(&[
        "train",
        "--events",
        arg(&trace.join("events.csv")),
        "--inventory",
        arg(&trace.join("inventory.csv")),
        "--horizon",
        "7d",
        "--step",
        "7d",
        "--calibration-cuts",
        "2",
        "--name",
        name,
        "--out",
        arg(out),
    ]);
    for f in feedback {
        a.push("--feedback".into());
        a.push(arg(f).into());
    }
    a
}

/// How long a server may take to log its address.
const START_PATIENCE: Duration = Duration::from_secs(120);

/// A `reprieve serve` process: stderr is drained by a thread (so the server never blocks on it) into its log, the
/// address read from the "listening" line. Dropping it kills the process.
pub struct ServeProcess {
    child: Child,
    /// The gRPC listener's address, as logged.
    pub addr: String,
    /// The "listening" log line.
    pub listening: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl ServeProcess {
    /// `reprieve serve --listen 127.0.0.1:0 --data-dir data_dir`.
    pub fn start(data_dir: &Path) -> Self {
        Self::spawn(reprieve().args(["serve", "--listen", "127.0.0.1:0", "--data-dir", arg(data_dir)]))
    }

    /// Spawns `command` (a `reprieve serve` command line) and waits until it logs its address.
    pub fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening")
                    && let Some(addr) = line.split("addr=Some(").nth(1).and_then(|r| r.split(')').next())
                {
                    let _ = tx.send((addr.to_string(), line.clone()));
                }
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        match rx.recv_timeout(START_PATIENCE) {
            Ok((addr, listening)) => Self {
                child,
                addr,
                listening,
                log,
                reader: Some(reader),
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not start: {:?}",
                    log.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
        }
    }

    /// The log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the health service says SERVING and returns a plaintext channel.
    pub async fn ready(&self) -> Channel {
        let endpoint = format!("http://{}", self.addr);
        for _ in 0..600 {
            if let Ok(channel) = Channel::from_shared(endpoint.clone())
                .expect("endpoint")
                .connect()
                .await
            {
                let status = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest { service: String::new() })
                    .await
                    .map(|r| r.into_inner().status);
                if status.is_ok_and(|s| s == ServingStatus::Serving as i32) {
                    return channel;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never became SERVING", self.addr);
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM; waits for the exit and for the whole log to be read, and returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = self.child.wait().expect("server exits");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("log reader");
        }
        exit
    }

    /// SIGTERM and a clean exit (which releases the store); returns the whole log.
    pub fn stop(mut self) -> Vec<String> {
        let exit = self.terminate();
        let log = self.log();
        assert!(exit.success(), "clean exit: {exit:?} {log:?}");
        log
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // A no-op for a process already waited for.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
