//! Controller-side ssh material: a client key, a known_hosts file with every
//! host's real key (host keys are checked strictly, never auto-accepted) and
//! a client config naming both.
//!
//! OpenSSH finds `~/.ssh/config` through the passwd entry, not `$HOME`, so a
//! test cannot redirect it by setting HOME; the config must be passed
//! explicitly: `ssh -F PATH`, `NIX_SSHOPTS="-F PATH"` for `nix copy`, and
//! `lab --ssh-config PATH` for lab.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::netns::run;

/// Generates an ed25519 key pair at `path` (and `path.pub`); returns the
/// public key as `type base64`.
pub fn keygen(path: &Path, comment: &str) -> Result<String> {
    let p = path.to_str().context("key path is not UTF-8")?;
    run("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", p])?;
    let public = std::fs::read_to_string(path.with_extension("pub"))?;
    Ok(public.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}

/// The fleet's client side.
pub struct Client {
    /// The ssh client config (`ssh -F`).
    pub config: PathBuf,
    /// The known_hosts file it names.
    pub known_hosts: PathBuf,
    /// The private key it names.
    pub identity: PathBuf,
    /// The public key, for the hosts' authorized_keys.
    pub public: String,
}

impl Client {
    /// Creates the key in `dir` (config and known_hosts come with [`Client::write`]).
    pub fn new(dir: &Path) -> Result<Client> {
        std::fs::create_dir_all(dir)?;
        let identity = dir.join("id_ed25519");
        let public = keygen(&identity, "lab-e2e-controller")?;
        Ok(Client { config: dir.join("config"), known_hosts: dir.join("known_hosts"), identity, public })
    }

    /// Writes known_hosts and the config for `(name, address, host key,
    /// proxy command)`.
    ///
    /// Each host is reachable as its address (what lab's `targetHost` says)
    /// and as its name; both spellings are in known_hosts. A host with a
    /// proxy command is reached through it (`ProxyCommand`).
    pub fn write(&self, hosts: &[(String, String, String, Option<String>)]) -> Result<()> {
        let mut known = String::new();
        let mut config =
            String::from("# lab-e2e test fleet: pass with ssh -F / lab --ssh-config / NIX_SSHOPTS=\"-F …\"\n");
        for (name, addr, key, proxy) in hosts {
            known.push_str(&format!("{addr},{name} {key}\n"));
            config.push_str(&format!("Host {name}\n  HostName {addr}\n"));
            if let Some(proxy) = proxy {
                config.push_str(&format!("Host {name} {addr}\n  ProxyCommand {proxy}\n"));
            }
        }
        let patterns: Vec<&str> = hosts.iter().flat_map(|(n, a, _, _)| [n.as_str(), a.as_str()]).collect();
        config.push_str(&format!(
            "Host {}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  CheckHostIP no\n  BatchMode yes\n  ConnectTimeout 5\n  LogLevel ERROR\n",
            patterns.join(" "),
            self.identity.display(),
            self.known_hosts.display()
        ));
        std::fs::write(&self.known_hosts, known)?;
        std::fs::write(&self.config, config)?;
        Ok(())
    }
}

/// sshd's config for a host listening on `addr`, with its files in `dir`.
pub fn sshd_config(addr: &str, dir: &Path) -> String {
    format!(
        "# lab-e2e test host sshd\nListenAddress {addr}:22\nHostKey {d}/ssh_host_ed25519_key\nAuthorizedKeysFile {d}/authorized_keys\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
         StrictModes no\nPidFile none\nPrintMotd no\nSubsystem sftp internal-sftp\n",
        d = dir.display()
    )
}
