//! A TCP forwarder between agents and the coordinator that can hold the agents' bytes.
//!
//! It stands for the network, not for any fleetcal part: every byte is the real gRPC traffic.
//! `hold_upstream` keeps what agents send (reports, uploads) from reaching the coordinator
//! while directives still flow down, which pins a run between "plan received" and "result
//! acknowledged" without any timing assumption. `hold_downstream` does the same for what the
//! coordinator sends (directives, acknowledgements); both at once are a network that went
//! silent in both directions without closing anything (`blackhole`). `cut` resets every
//! connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

/// Which directions wait in the proxy.
#[derive(Default, Clone, Copy)]
struct Held {
    /// Agent → coordinator.
    up: bool,
    /// Coordinator → agent.
    down: bool,
}

impl Held {
    fn holds(self, upstream: bool) -> bool {
        if upstream {
            self.up
        } else {
            self.down
        }
    }
}

#[derive(Default)]
struct Shared {
    held: Mutex<Held>,
    released: Condvar,
    conns: Mutex<Vec<TcpStream>>,
    stopping: AtomicBool,
    /// Bumped by `cut`: connections of an older epoch never forward another byte.
    epoch: AtomicU64,
}

/// A forwarder listening on 127.0.0.1:0; stops and resets everything on drop.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Forwards every connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue; // coordinator down: the agent sees a reset
                };
                let mut conns = s.conns.lock().unwrap();
                conns.push(client.try_clone().unwrap());
                conns.push(server.try_clone().unwrap());
                drop(conns);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (up, down) = (s.clone(), s.clone());
                thread::spawn(move || pump(client, server, up, true));
                thread::spawn(move || pump(s2, c2, down, false));
            }
        });
        Proxy { addr, shared }
    }

    /// The URL agents dial: `https://` (the harness's coordinators serve mutual TLS; the
    /// proxy passes the bytes through).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// From now on, bytes from agents wait in the proxy.
    pub fn hold_upstream(&self) {
        self.shared.held.lock().unwrap().up = true;
    }

    /// From now on, bytes from the coordinator (directives, answers) wait in the proxy.
    pub fn hold_downstream(&self) {
        self.shared.held.lock().unwrap().down = true;
    }

    /// Nothing gets through in either direction, and nothing is closed: a network cut as the
    /// endpoints see it (new connections are accepted but carry nothing either).
    pub fn blackhole(&self) {
        *self.shared.held.lock().unwrap() = Held {
            up: true,
            down: true,
        };
    }

    /// Lets what agents send through again (what the coordinator sends stays as it is).
    pub fn release_upstream(&self) {
        self.shared.held.lock().unwrap().up = false;
        self.shared.released.notify_all();
    }

    /// Lets held and new bytes through, in both directions.
    pub fn release(&self) {
        *self.shared.held.lock().unwrap() = Held::default();
        self.shared.released.notify_all();
    }

    /// Resets every open connection (held bytes are dropped).
    pub fn cut(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        self.shared.released.notify_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.release();
        self.cut();
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` to `to` (agent → coordinator when `upstream`), waiting while that direction
/// is held.
fn pump(mut from: TcpStream, mut to: TcpStream, s: Arc<Shared>, upstream: bool) {
    let epoch = s.epoch.load(Ordering::SeqCst);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut held = s.held.lock().unwrap();
        while held.holds(upstream) && s.epoch.load(Ordering::SeqCst) == epoch {
            held = s.released.wait(held).unwrap();
        }
        drop(held);
        if s.epoch.load(Ordering::SeqCst) != epoch {
            break;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
