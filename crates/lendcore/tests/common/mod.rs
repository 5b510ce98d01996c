//! Running `lendcore serve` as a child process, as an operator would.
// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_lendcore");

/// A `lendcore serve` process, killed (SIGKILL) and reaped when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Kills the process at once, as a crash or `kill -9` would: no shutdown, nothing flushed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `lendcore serve` on `db_url` in `dir` (where a `lendcore.toml` may wait), with `env`
/// added, and returns once it says where it serves.
pub fn start(db_url: &str, dir: &Path, env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--db", db_url, "--bind", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("LENDCORE_CONFIG")
        .env("LENDCORE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().unwrap();
    // Owned at once, so the process is killed and reaped whatever happens below.
    let mut server = Server {
        child,
        base: String::new(),
    };
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server said where it serves");
        if let Some(address) = line.split("address=").nth(1) {
            let address = address.split_whitespace().next().unwrap().to_owned();
            // Keep the pipe drained so the server never blocks on a full stderr.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            server.base = format!("http://{address}");
            return server;
        }
    }
}

/// A fresh API key with every scope, made by `lendcore api-keys create` as an operator would.
pub fn api_key(db_url: &str, dir: &Path) -> String {
    let output = Command::new(BIN)
        .args([
            "api-keys",
            "create",
            "--db",
            db_url,
            "--name",
            "tests",
            "--all-scopes",
        ])
        .current_dir(dir)
        .env_remove("LENDCORE_CONFIG")
        .env("LENDCORE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "api-keys create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("lck_"), "printed the key alone: {key}");
    key
}

/// An HTTP client that sends `key` with every request.
pub fn client(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}
