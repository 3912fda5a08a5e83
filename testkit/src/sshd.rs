//! Real sshd test hosts.
//!
//! An [`SshLab`] holds a client key, a known_hosts file and an ssh client
//! config (passed to lab with `--ssh-config`/`SshOptions::config_file`, as a
//! user would); each [`TestHost`] is an `sshd -D` with its own host key,
//! either on a 127.0.0.x port or in its own network namespace (reached over a
//! veth pair) so that its `localhost` is not the controller's. A host can be
//! given its own boot id (a file bind-mounted over
//! /proc/sys/kernel/random/boot_id in a private mount namespace) and
//! "rebooted" (sshd stopped, new boot id, sshd started).
//!
//! Everything is bounded in time and torn down on drop, also when a test
//! panics; namespaces left by a killed test run are removed by the next one.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Prefix of every network namespace the harness creates.
const NETNS_PREFIX: &str = "labt-";

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn keygen(path: &Path) -> String {
    run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", "lab-test", "-f", path.to_str().unwrap()]);
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    // "ssh-ed25519 AAAA… comment" → type and key only.
    public.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Client-side material shared by the hosts of one test.
pub struct SshLab {
    /// Holds keys and configs; a short path, since ssh control sockets live near it.
    pub dir: tempfile::TempDir,
    /// The ssh client config to pass to lab.
    pub ssh_config: PathBuf,
    /// The known_hosts file that config names.
    pub known_hosts: PathBuf,
    client_public: String,
}

impl SshLab {
    /// Creates a client key, an empty known_hosts and a client config that
    /// uses them and checks host keys strictly.
    pub fn new() -> Self {
        std::fs::create_dir_all("/run/sshd").unwrap(); // sshd's privilege separation directory
        remove_stale_namespaces();
        let dir = tempfile::Builder::new().prefix("labt").tempdir_in("/tmp").unwrap();
        let key = dir.path().join("client_ed25519");
        let client_public = keygen(&key);
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, "").unwrap();
        let ssh_config = dir.path().join("ssh_config");
        std::fs::write(
            &ssh_config,
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  CheckHostIP no\n  LogLevel ERROR\n",
                key.display(),
                known_hosts.display()
            ),
        )
        .unwrap();
        SshLab { dir, ssh_config, known_hosts, client_public }
    }

    /// Starts a host on 127.0.0.x.
    pub fn host(&self, name: &str) -> TestHost {
        self.start(name, false, None)
    }

    /// Starts a host in its own network namespace.
    pub fn host_in_netns(&self, name: &str) -> TestHost {
        self.start(name, true, None)
    }

    /// Starts a host (on 127.0.0.x) whose boot id is `boot_id`.
    pub fn host_with_boot_id(&self, name: &str, boot_id: &str) -> TestHost {
        self.start(name, false, Some(boot_id))
    }

    fn start(&self, name: &str, netns: bool, boot_id: Option<&str>) -> TestHost {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.path().join(format!("h{n}"));
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let host_public = keygen(&dir.join("host_ed25519"));
        std::fs::write(dir.join("authorized_keys"), format!("{}\n", self.client_public)).unwrap();
        let boot_id_file = boot_id.map(|id| {
            let file = dir.join("boot_id");
            std::fs::write(&file, format!("{id}\n")).unwrap();
            file
        });
        let ns = netns.then(|| Netns::create(n));
        let (ip, port) = match &ns {
            Some(ns) => (ns.inside, 22),
            // Spread over 127.0.0.0/8 so parallel tests rarely share an address.
            None => {
                let ip = Ipv4Addr::new(127, 0, (std::process::id() % 200) as u8 + 20, (n % 200) as u8 + 20);
                let port = std::net::TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
                (ip, port)
            }
        };
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "ListenAddress {ip}:{port}\nHostKey {dir}/host_ed25519\nPidFile none\nAuthorizedKeysFile {dir}/authorized_keys\n\
                 StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nUsePAM no\nMaxSessions 100\nMaxStartups 100:30:200\nLogLevel ERROR\n\
                 SetEnv PATH={dir}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
                dir = dir.display()
            ),
        )
        .unwrap();
        let mut host = TestHost {
            name: name.to_string(),
            addr: SocketAddr::from((ip, port)),
            dir,
            host_public,
            boot_id_file,
            netns: ns,
            sshd: None,
            known_hosts: self.known_hosts.clone(),
        };
        host.start_sshd();
        host.trust_key(&host.host_public.clone());
        host
    }
}

impl Default for SshLab {
    fn default() -> Self {
        Self::new()
    }
}

/// One sshd test host.
pub struct TestHost {
    /// Its name in the fleet.
    pub name: String,
    /// Where its sshd listens.
    pub addr: SocketAddr,
    /// Its private directory; `bin/` is first on the PATH of its sessions.
    pub dir: PathBuf,
    host_public: String,
    boot_id_file: Option<PathBuf>,
    netns: Option<Netns>,
    sshd: Option<Child>,
    known_hosts: PathBuf,
}

impl TestHost {
    fn start_sshd(&mut self) {
        let config = self.dir.join("sshd_config");
        let config = config.to_str().unwrap();
        let passwd = self.dir.join("passwd");
        std::fs::write(&passwd, own_passwd(&self.dir)).unwrap();
        let mut argv: Vec<String> = Vec::new();
        if let Some(ns) = &self.netns {
            argv.extend(["ip", "netns", "exec", &ns.name].map(String::from));
        }
        // sshd runs every session through the login shell of the user's
        // passwd entry, in its home. The controller's are not the host's: a
        // `.bashrc` that hangs (a tool's stale lock) must not stall a test. In
        // a private mount namespace the host sees its own passwd, in which
        // root's home is the host's directory and its shell is /bin/sh, which
        // reads no start-up file for `sh -c`.
        let mut script = String::from("mount --bind \"$1\" /etc/passwd || exit 1\n");
        if self.boot_id_file.is_some() {
            script.push_str("mount --bind \"$3\" /proc/sys/kernel/random/boot_id || exit 1\n");
        }
        script.push_str("exec /usr/sbin/sshd -D -e -f \"$2\"");
        let boot_id = self.boot_id_file.as_ref().map(|f| f.to_str().unwrap().to_string()).unwrap_or_default();
        argv.extend(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script.as_str(), "sshd-host"]
                .map(String::from),
        );
        argv.extend([passwd.to_str().unwrap().to_string(), config.to_string(), boot_id]);
        let log = std::fs::File::create(self.dir.join("sshd.log")).unwrap();
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.sshd = Some(child);
        // Stops a hang; a busy machine may take a while to start sshd.
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "sshd of {} did not listen on {}: {}", self.name, self.addr, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops sshd and every session it started (its whole process tree:
    /// killing only the listener would leave sessions running).
    pub fn stop_sshd(&mut self) {
        if let Some(mut child) = self.sshd.take() {
            kill_tree(child.id());
            let _ = child.wait();
        }
    }

    /// Simulates a reboot: sshd goes down, the boot id changes after `down`,
    /// sshd comes back.
    pub fn reboot(&mut self, new_boot_id: &str, down: Duration) {
        self.stop_sshd();
        std::thread::sleep(down);
        let file = self.boot_id_file.as_ref().expect("host has its own boot id");
        std::fs::write(file, format!("{new_boot_id}\n")).unwrap();
        self.start_sshd();
    }

    /// Replaces the host's entry in known_hosts with `key` (`type base64`).
    pub fn trust_key(&self, key: &str) {
        let pattern = self.known_hosts_pattern();
        let old = std::fs::read_to_string(&self.known_hosts).unwrap();
        let mut lines: Vec<String> =
            old.lines().filter(|l| l.split_whitespace().next() != Some(pattern.as_str())).map(String::from).collect();
        lines.push(format!("{pattern} {key}"));
        std::fs::write(&self.known_hosts, lines.join("\n") + "\n").unwrap();
    }

    /// Pins a freshly generated key that is not the host's: what a
    /// man-in-the-middle (or a reinstalled host) looks like to ssh.
    pub fn pin_wrong_key(&self) {
        let other = keygen(&self.dir.join(format!("other_{}", NEXT.fetch_add(1, Ordering::Relaxed))));
        self.trust_key(&other);
    }

    fn known_hosts_pattern(&self) -> String {
        if self.addr.port() == 22 {
            self.addr.ip().to_string()
        } else {
            format!("[{}]:{}", self.addr.ip(), self.addr.port())
        }
    }

    /// The machine's JSON contract entry (metadata) pointing lab at this host.
    pub fn machine_json(&self, health_checks: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "role": "test",
            "rebootOrder": 0,
            "targetHost": self.addr.ip().to_string(),
            "targetPort": self.addr.port(),
            "targetUser": "root",
            "healthChecks": health_checks,
        })
    }

    /// A TCP listener bound to `127.0.0.1:0` inside the host's network
    /// namespace: reachable as `localhost` from the host only.
    pub fn bind_inside(&self) -> std::net::TcpListener {
        let ns = self.netns.as_ref().expect("host has its own network namespace");
        let path = format!("/run/netns/{}", ns.name);
        // setns changes the calling thread only, so a throwaway thread binds
        // the socket; the socket stays in the namespace it was made in.
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let file = std::fs::File::open(path).unwrap();
            // SAFETY: setns on a valid namespace fd affects this thread only.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap()
        })
        .join()
        .unwrap()
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.stop_sshd();
        // Dropping the namespace deletes it (and the veth pair).
        self.netns.take();
    }
}

/// The controller's /etc/passwd with root's home set to `home` and its shell
/// to /bin/sh: what a test host's sessions see.
fn own_passwd(home: &Path) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let mut out = String::new();
    for line in passwd.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() == 7 && fields[2] == "0" {
            fields[5] = home.to_str().unwrap();
            fields[6] = "/bin/sh";
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    out
}

/// A network namespace linked to the controller by a veth pair.
struct Netns {
    name: String,
    inside: Ipv4Addr,
}

impl Netns {
    fn create(n: u32) -> Self {
        let pid = std::process::id();
        let name = format!("{NETNS_PREFIX}{pid}-{n}");
        // Interface names are limited to 15 bytes.
        let (outer, inner) = (format!("lo{}x{n}", pid % 100_000), format!("li{}x{n}", pid % 100_000));
        // A /30 per host in 10.232.0.0/16, chosen by pid and host number (the
        // e2e fleet harness owns 10.231.0.0/24).
        let base = ((pid % 64) * 1024 + (n % 256) * 4) as u16;
        let (a, b) = ((base >> 8) as u8, (base & 0xff) as u8);
        let outside = Ipv4Addr::new(10, 232, a, b + 1);
        let inside = Ipv4Addr::new(10, 232, a, b + 2);
        let ns = Netns { name, inside };
        run("ip", &["netns", "add", &ns.name]);
        run("ip", &["link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns.name]);
        run("ip", &["addr", "add", &format!("{outside}/30"), "dev", &outer]);
        run("ip", &["link", "set", &outer, "up"]);
        run("ip", &["-n", &ns.name, "addr", "add", &format!("{inside}/30"), "dev", &inner]);
        run("ip", &["-n", &ns.name, "link", "set", &inner, "up"]);
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    fn kill_all(&self) {
        let out = Command::new("ip").args(["netns", "pids", &self.name]).output();
        for pid in out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default().split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: plain kill(2) of a process in our own test namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// SIGKILLs `root` and all its descendants (found through /proc).
fn kill_tree(root: u32) {
    let mut tree = vec![root];
    // Bounded: a tree deeper than this is not an sshd test host.
    for _ in 0..8 {
        let mut grew = false;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            if tree.contains(&pid) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // The parent pid is the second field after the ")" closing the command name.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid.is_some_and(|p| tree.contains(&p)) {
                tree.push(pid);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }
    for pid in tree {
        // SAFETY: plain kill(2) of processes this harness started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
}

/// Deletes namespaces left behind by test processes that no longer exist.
fn remove_stale_namespaces() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NETNS_PREFIX) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let ns = Netns { name, inside: Ipv4Addr::UNSPECIFIED };
            drop(ns);
        }
    }
}
