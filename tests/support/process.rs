//! `dpo controller` as its own process, as a Pod runs it: AWS reached through moto's test
//! credentials, its log in a file, killed (log printed) if the test fails while it runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

pub struct DpoProcess {
    child: Child,
    log: PathBuf,
}

impl DpoProcess {
    /// Runs `dpo ARGS` (`controller …`) with the environment `env`, logging to `log`.
    pub fn start(args: &[String], env: &[(&str, &str)], log: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_dpo"))
            .args(args)
            .envs(env.iter().copied())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("cannot start dpo");
        DpoProcess { child, log: log.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as the kubelet stops it: a clean exit (a lost Lease, say, would be exit 1).
    pub fn stop(&mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM failed");
        let exit = self.child.wait().expect("wait for dpo");
        assert!(exit.success(), "dpo controller exited with {exit:?} after SIGTERM");
    }

    /// SIGKILL: a crash, with no chance to release anything.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill dpo");
        self.child.wait().expect("wait for dpo");
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for dpo")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The text of `http://ADDRESS/metrics` (HTTP/1.0: the answer ends when the connection does).
pub async fn scrape(address: std::net::SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: dpo\r\n\r\n").await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
}

impl Drop for DpoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("dpo controller log ({}):\n{}", self.log.display(), self.log_text());
        }
    }
}
