//! A real etcd server for the tests of etcd membership: on free loopback ports, from `ETCD_BIN`,
//! else /usr/bin/etcd (scripts/install-deps.sh installs Debian's etcd-server), killed by its pid
//! when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_ports;

/// One etcd server, killed (by its pid) when dropped.
pub struct EtcdServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    data: PathBuf,
    client_port: u16,
    peer_port: u16,
}

impl EtcdServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let ports = free_ports(2);
        let mut etcd = Self { child: None, data, dir, client_port: ports[0], peer_port: ports[1] };
        etcd.spawn();
        etcd
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same ports; `keep_data` false starts it empty,
    /// as a replacement of a server that lost its disk.
    pub fn restart(&mut self, keep_data: bool) {
        self.kill();
        if !keep_data {
            self.data = self.dir.path().join("data-new");
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        let bin = etcd_bin();
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("etcd log file");
        let child = Command::new(&bin)
            .args(["--name", "test"])
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            // A short election makes a fresh single-node server ready sooner.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("etcd exited with {status}; its log:\n{}", self.log());
            }
            if health(self.client_port) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd did not become healthy within 20 s; its log:\n{}", self.log());
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn etcd_bin() -> PathBuf {
    let bin: PathBuf = std::env::var_os("ETCD_BIN").map_or_else(|| "/usr/bin/etcd".into(), PathBuf::from);
    assert!(
        bin.is_file(),
        "no etcd server at {} (ETCD_BIN, else /usr/bin/etcd): run scripts/install-deps.sh (Debian's etcd-server)",
        bin.display()
    );
    bin
}

/// etcd's own health endpoint on its client port answers `{"health":"true"}` once it has a leader.
fn health(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains(r#""health":"true""#)
}
