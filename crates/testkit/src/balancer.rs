//! A TCP load balancer in front of several server processes, as Kubernetes puts replicas
//! behind a Service: it polls each backend's `GET /readyz` (every 100 ms by default) and
//! sends each NEW connection, round-robin, to a ready backend. As with a Kubernetes readiness
//! probe's defaults, one poll answered 200 makes a backend ready, and three failed in a row
//! (not 200, or no answer within a second) make it unready, so one slow answer from a busy
//! replica does not take it out. A
//! connection stays with the backend it was given until one side closes it, whatever the
//! backend's readiness does meanwhile; a backend that is not ready only stops getting new
//! connections. Backends can be added and removed while it runs (a rolling restart).
//!
//! Like kube-proxy, and unlike an ingress with `proxy_next_upstream`, it never retries: a
//! connection it cannot place gets `503` (no ready backend) or `502` (the chosen backend
//! refused it), so a replica that stops accepting before it has been reported unready shows
//! up as failed requests. That is the point of the drain the tests check.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Connections open through the balancer at once, at most; more are answered 503.
const MAX_CONNECTIONS: usize = 512;
/// Backends one balancer holds, at most (added ones beyond are refused with a panic).
const MAX_BACKENDS: usize = 64;
/// How long a connect to a backend (proxying or polling) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a readiness poll may wait for its answer (a probe's `timeoutSeconds`).
const POLL_TIMEOUT: Duration = Duration::from_secs(1);
/// Failed polls in a row that make a backend unready (a probe's `failureThreshold`).
const FAILURE_THRESHOLD: u32 = 3;

/// Names a backend of a [`Balancer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendId(u64);

struct Backend {
    id: BackendId,
    addr: SocketAddr,
    /// Gets new connections (see [`FAILURE_THRESHOLD`]).
    ready: AtomicBool,
    /// Failed readiness polls in a row.
    failures: AtomicU32,
    /// Connections handed to it.
    connections: AtomicU64,
    /// Connections on which it sent at least one byte back.
    answered: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Backends that may get new connections (removed ones are dropped from here).
    backends: Mutex<Vec<Arc<Backend>>>,
    /// Every backend ever added, for the counters.
    all: Mutex<Vec<Arc<Backend>>>,
    next_id: AtomicU64,
    /// Round-robin position.
    turn: AtomicUsize,
    open: AtomicUsize,
    /// Connections answered 502/503 by the balancer itself.
    refused: AtomicU64,
    stopped: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    /// The next ready backend, round-robin.
    fn pick(&self) -> Option<Arc<Backend>> {
        let ready: Vec<Arc<Backend>> = lock(&self.backends)
            .iter()
            .filter(|b| b.ready.load(Ordering::SeqCst))
            .cloned()
            .collect();
        if ready.is_empty() {
            return None;
        }
        let turn = self.turn.fetch_add(1, Ordering::SeqCst);
        Some(ready[turn % ready.len()].clone())
    }

    fn find(&self, id: BackendId) -> Option<Arc<Backend>> {
        lock(&self.all).iter().find(|b| b.id == id).cloned()
    }
}

/// Listens on 127.0.0.1:`port()`; stops accepting when dropped (open connections finish).
pub struct Balancer {
    port: u16,
    state: Arc<State>,
}

impl Balancer {
    /// Starts with no backend, polling readiness every 100 ms.
    pub fn start() -> Self {
        Self::with_poll_interval(Duration::from_millis(100))
    }

    /// Starts with no backend, polling readiness every `every`.
    pub fn with_poll_interval(every: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the balancer");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || accept(listener, shared));
        let shared = state.clone();
        std::thread::spawn(move || poll(shared, every));
        Balancer { port, state }
    }

    /// The balancer's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a backend. It gets connections once a readiness poll has answered 200, as a new
    /// pod joins the endpoints only when its readiness probe passes.
    pub fn add(&self, addr: SocketAddr) -> BackendId {
        let id = BackendId(self.state.next_id.fetch_add(1, Ordering::SeqCst));
        let backend = Arc::new(Backend {
            id,
            addr,
            ready: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            connections: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        });
        let mut all = lock(&self.state.all);
        assert!(all.len() < MAX_BACKENDS, "at most {MAX_BACKENDS} backends");
        all.push(backend.clone());
        lock(&self.state.backends).push(backend);
        id
    }

    /// Gives the backend no new connection; the ones it has stay open.
    pub fn remove(&self, id: BackendId) {
        lock(&self.state.backends).retain(|b| b.id != id);
        if let Some(b) = self.state.find(id) {
            b.ready.store(false, Ordering::SeqCst);
        }
    }

    /// Whether the backend gets new connections: it was not removed, a poll answered 200,
    /// and fewer than three have failed since.
    pub fn is_ready(&self, id: BackendId) -> bool {
        lock(&self.state.backends)
            .iter()
            .any(|b| b.id == id && b.ready.load(Ordering::SeqCst))
    }

    /// Connections handed to the backend so far.
    pub fn connections(&self, id: BackendId) -> u64 {
        self.state
            .find(id)
            .map_or(0, |b| b.connections.load(Ordering::SeqCst))
    }

    /// Connections on which the backend answered (sent at least one byte) so far.
    pub fn answered(&self, id: BackendId) -> u64 {
        self.state
            .find(id)
            .map_or(0, |b| b.answered.load(Ordering::SeqCst))
    }

    /// Connections the balancer answered itself with 502 or 503.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), CONNECT_TIMEOUT);
    }
}

fn accept(listener: TcpListener, state: Arc<State>) {
    for client in listener.incoming() {
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if state.open.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            refuse(
                &state,
                client,
                "503 Service Unavailable",
                "too many connections",
            );
            continue;
        }
        let Some(backend) = state.pick() else {
            refuse(
                &state,
                client,
                "503 Service Unavailable",
                "no ready backend",
            );
            continue;
        };
        backend.connections.fetch_add(1, Ordering::SeqCst);
        let Ok(server) = TcpStream::connect_timeout(&backend.addr, CONNECT_TIMEOUT) else {
            refuse(&state, client, "502 Bad Gateway", "the backend refused");
            continue;
        };
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        state.open.fetch_add(1, Ordering::SeqCst);
        let up = std::thread::spawn(move || pipe(client, server, None));
        let down_state = state.clone();
        std::thread::spawn(move || {
            pipe(s2, c2, Some(&backend));
            let _ = up.join();
            down_state.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Answers a connection the balancer cannot place, then closes it. The answer waits for the
/// request (at most a second, on a thread of its own), as a client reads no response before
/// it has sent one.
fn refuse(state: &State, mut client: TcpStream, status: &'static str, why: &'static str) {
    state.refused.fetch_add(1, Ordering::SeqCst);
    std::thread::spawn(move || {
        let _ = client.set_read_timeout(Some(POLL_TIMEOUT));
        let _ = client.read(&mut [0u8; 4096]);
        let body = format!("{why}\n");
        let _ = write!(
            client,
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.shutdown(Shutdown::Both);
    });
}

/// Copies `from` to `to` until `from` ends, then passes the end on (a half close, so the other
/// direction can still finish). `answering` counts the first byte a backend sends back.
fn pipe(mut from: TcpStream, mut to: TcpStream, answering: Option<&Backend>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut counted = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(b) = answering.filter(|_| !counted) {
            b.answered.fetch_add(1, Ordering::SeqCst);
            counted = true;
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Polls every backend's readiness every `every` until the balancer is dropped.
fn poll(state: Arc<State>, every: Duration) {
    while !state.stopped.load(Ordering::SeqCst) {
        let backends: Vec<Arc<Backend>> = lock(&state.backends).clone();
        for b in backends {
            if ready(b.addr) {
                b.failures.store(0, Ordering::SeqCst);
                b.ready.store(true, Ordering::SeqCst);
            } else if b.failures.fetch_add(1, Ordering::SeqCst) + 1 >= FAILURE_THRESHOLD {
                b.ready.store(false, Ordering::SeqCst);
            }
        }
        std::thread::sleep(every);
    }
}

/// `GET /readyz` answered 200, within the poll's timeouts.
fn ready(addr: SocketAddr) -> bool {
    let Ok(mut conn) = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(POLL_TIMEOUT));
    let _ = conn.set_write_timeout(Some(POLL_TIMEOUT));
    if conn
        .write_all(
            format!("GET /readyz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .is_err()
    {
        return false;
    }
    // The status line is all it needs: "HTTP/1.1 200 OK".
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test backend's `/readyz` answers.
    #[derive(Default)]
    struct Probe {
        /// 503 every time.
        down: AtomicBool,
        /// 200 on every third poll only (never three failures in a row).
        flaky: AtomicBool,
        polls: AtomicUsize,
    }

    impl Probe {
        fn up() -> Arc<Probe> {
            Arc::default()
        }

        fn down() -> Arc<Probe> {
            let p = Probe::up();
            p.down.store(true, Ordering::SeqCst);
            p
        }

        fn answer(&self) -> bool {
            let n = self.polls.fetch_add(1, Ordering::SeqCst);
            let flaky = self.flaky.load(Ordering::SeqCst);
            !self.down.load(Ordering::SeqCst) && (!flaky || n.is_multiple_of(3))
        }
    }

    /// A backend that answers `/readyz` as `probe` says and everything else with `name`, one
    /// request per connection.
    fn backend(name: &'static str, probe: Arc<Probe>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let probe = probe.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    let n = conn.read(&mut buf).unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let (status, body) = if request.starts_with("GET /readyz") {
                        if probe.answer() {
                            ("200 OK", "ready")
                        } else {
                            ("503 Service Unavailable", "draining")
                        }
                    } else {
                        ("200 OK", name)
                    };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        addr
    }

    /// One request on a new connection through the balancer: its status line and body.
    fn get(port: u16) -> String {
        let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            conn,
            "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        let status = answer.lines().next().unwrap_or_default().to_owned();
        let body = answer.rsplit("\r\n\r\n").next().unwrap_or_default().trim();
        format!("{status} {body}")
    }

    fn until(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("never: {what}");
    }

    #[test]
    fn new_connections_go_round_robin_to_ready_backends_only() {
        let lb = Balancer::with_poll_interval(Duration::from_millis(10));
        assert_eq!(
            get(lb.port()),
            "HTTP/1.1 503 Service Unavailable no ready backend"
        );
        let (a_probe, b_probe) = (Probe::up(), Probe::down());
        let a = lb.add(backend("a", a_probe.clone()));
        let b = lb.add(backend("b", b_probe.clone()));
        until("a is ready", || lb.is_ready(a));
        assert!(!lb.is_ready(b), "b answers 503");
        for _ in 0..4 {
            assert_eq!(get(lb.port()), "HTTP/1.1 200 OK a");
        }

        b_probe.down.store(false, Ordering::SeqCst);
        until("b is ready", || lb.is_ready(b));
        let answers: Vec<String> = (0..6).map(|_| get(lb.port())).collect();
        let from_b = answers.iter().filter(|a| a.ends_with(" b")).count();
        assert_eq!(from_b, 3, "{answers:?}");

        a_probe.down.store(true, Ordering::SeqCst);
        until("a is out", || !lb.is_ready(a));
        for _ in 0..4 {
            assert_eq!(get(lb.port()), "HTTP/1.1 200 OK b");
        }
        assert_eq!(lb.answered(a), 7);
        assert_eq!(lb.connections(b), 7);
        assert_eq!(lb.refused(), 1);
    }

    #[test]
    fn a_removed_backend_gets_no_new_connection_and_a_replacement_takes_over() {
        let lb = Balancer::with_poll_interval(Duration::from_millis(10));
        let a = lb.add(backend("a", Probe::up()));
        until("a is ready", || lb.is_ready(a));
        // An open connection keeps its backend when that backend is removed.
        let mut held = TcpStream::connect(("127.0.0.1", lb.port())).unwrap();
        held.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        until("the held connection reached a", || lb.connections(a) == 1);
        lb.remove(a);
        assert!(!lb.is_ready(a));
        assert_eq!(
            get(lb.port()),
            "HTTP/1.1 503 Service Unavailable no ready backend"
        );
        let a2 = lb.add(backend("a2", Probe::up()));
        until("a2 is ready", || lb.is_ready(a2));
        assert_eq!(get(lb.port()), "HTTP/1.1 200 OK a2");

        write!(held, "GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        held.read_to_string(&mut answer).unwrap();
        assert!(answer.ends_with("\r\n\r\na"), "{answer}");
        assert_eq!(lb.connections(a), 1);
    }

    #[test]
    fn a_backend_stays_in_until_three_polls_in_a_row_fail() {
        let lb = Balancer::with_poll_interval(Duration::from_millis(5));
        let probe = Probe::up();
        let a = lb.add(backend("a", probe.clone()));
        until("a is ready", || lb.is_ready(a));
        // Two failures, then a success, over and over: a busy replica, not a gone one.
        probe.flaky.store(true, Ordering::SeqCst);
        let from = probe.polls.load(Ordering::SeqCst);
        while probe.polls.load(Ordering::SeqCst) < from + 30 {
            assert!(
                lb.is_ready(a),
                "out after poll {}",
                probe.polls.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        probe.down.store(true, Ordering::SeqCst);
        until("a is out", || !lb.is_ready(a));
    }
}
