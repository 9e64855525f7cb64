//! A TCP proxy that can cut every connection and refuse new ones, then come back: a database
//! outage for one test without stopping the server other tests share. It can also stall: keep
//! every connection open but forward nothing (no RST, no FIN), as a network partition does.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct State {
    down: AtomicBool,
    stalled: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    /// Per connection: silent for good (see [`TcpProxy::heal_new_only`]).
    lost: Mutex<Vec<Arc<AtomicBool>>>,
}

impl State {
    /// Holds the caller while the proxy is stalled or the connection `lost` (and not cut).
    fn wait_while_stalled(&self, lost: &AtomicBool) {
        while (self.stalled.load(Ordering::SeqCst) || lost.load(Ordering::SeqCst))
            && !self.down.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Forwards 127.0.0.1:`port()` to a target address.
pub struct TcpProxy {
    port: u16,
    state: Arc<State>,
}

/// Copies `from` to `to`. While stalled, what was read is held, and so is the end of the
/// stream: a partition lets neither data nor a FIN through.
fn pipe(mut from: TcpStream, mut to: TcpStream, state: &State, lost: &AtomicBool) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        state.wait_while_stalled(lost);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    state.wait_while_stalled(lost);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl TcpProxy {
    /// Starts forwarding to `target`.
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if shared.down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                if let Ok(mut open) = shared.open.lock() {
                    open.extend(client.try_clone().ok());
                    open.extend(server.try_clone().ok());
                }
                let lost = Arc::new(AtomicBool::new(false));
                if let Ok(mut all) = shared.lost.lock() {
                    all.push(lost.clone());
                }
                let (up, down) = (shared.clone(), shared.clone());
                let lost2 = lost.clone();
                std::thread::spawn(move || pipe(client, server, &up, &lost));
                std::thread::spawn(move || pipe(s2, c2, &down, &lost2));
            }
        });
        TcpProxy { port, state }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes every connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        if let Ok(mut open) = self.state.open.lock() {
            for s in open.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// Stops forwarding bytes on every connection, open or new, while keeping them open:
    /// nothing is closed or reset, as in a network partition, until [`resume`](Self::resume).
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again, starting with what was held during the stall.
    pub fn resume(&self) {
        self.state.stalled.store(false, Ordering::SeqCst);
    }

    /// Ends a stall as a firewall that lost its connection table does: new connections
    /// forward again, but every connection opened before stays silent for good (until
    /// [`cut`](Self::cut)), so only a client that gives up on them recovers.
    pub fn heal_new_only(&self) {
        if let Ok(all) = self.state.lost.lock() {
            for lost in all.iter() {
                lost.store(true, Ordering::SeqCst);
            }
        }
        self.state.stalled.store(false, Ordering::SeqCst);
    }
}
