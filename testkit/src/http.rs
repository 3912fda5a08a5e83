//! Minimal HTTP/1.1 servers with fixed behaviours, for health checks.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What the server answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// This status, body "ok".
    Status(u16),
    /// Read the request, then never answer.
    Hang,
    /// Redirect to the same path again, forever.
    RedirectLoop,
    /// `/start` redirects `hops` times, then 200.
    Redirects(u32),
    /// Whatever status the shared cell holds at the time of the request.
    Switch(Arc<std::sync::atomic::AtomicU16>),
}

/// A running server; stops (with every connection) when dropped.
pub struct HttpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The head of every request received, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    /// Starts a server on `ip`, on a free port.
    pub async fn start(ip: Ipv4Addr, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind test http server");
        Self::serve(listener, behaviour)
    }

    /// Serves on an already bound listener (e.g. one bound inside a network namespace).
    pub fn from_std(listener: std::net::TcpListener, behaviour: Behaviour) -> Self {
        listener.set_nonblocking(true).unwrap();
        Self::serve(TcpListener::from_std(listener).unwrap(), behaviour)
    }

    fn serve(listener: TcpListener, behaviour: Behaviour) -> Self {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            // Connections live in the set, so aborting the server ends them too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { continue };
                let (behaviour, seen) = (behaviour.clone(), seen.clone());
                connections.spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    let read = async {
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => return false,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        true
                    };
                    if !tokio::time::timeout(Duration::from_secs(10), read).await.unwrap_or(false) {
                        return;
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    seen.lock().unwrap().push(head);
                    let response = match behaviour {
                        Behaviour::Status(code) => response(code, None),
                        Behaviour::Switch(cell) => response(cell.load(std::sync::atomic::Ordering::SeqCst), None),
                        Behaviour::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        Behaviour::RedirectLoop => response(302, Some(&path)),
                        Behaviour::Redirects(hops) => {
                            let n: u32 = path.trim_start_matches("/hop").parse().unwrap_or(0);
                            if path == "/start" || n < hops {
                                response(302, Some(&format!("/hop{}", if path == "/start" { 1 } else { n + 1 })))
                            } else {
                                response(200, None)
                            }
                        }
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
                // Reap finished connections so the set stays small.
                while connections.try_join_next().is_some() {}
            }
        });
        HttpServer { addr, requests, task }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn response(code: u16, location: Option<&str>) -> String {
    let location = location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
    format!("HTTP/1.1 {code} X\r\n{location}Content-Length: 2\r\nConnection: close\r\n\r\nok")
}

/// A port on `ip` where nothing listens (bound, then released).
pub fn closed_port(ip: Ipv4Addr) -> u16 {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.local_addr().unwrap().port()
}
