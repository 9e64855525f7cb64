//! A tiny HTTP server that answers every request with a body sent in chosen chunks, with
//! pauses between them: what `wiremock` cannot do. For SSE parsing across chunk boundaries
//! and first-token timing. Plain blocking sockets on a thread, so it needs no runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One piece of the response body and the pause before it.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Wait this long before sending the bytes.
    pub pause: Duration,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Chunk {
    /// Bytes sent right away.
    pub fn now(bytes: impl Into<Vec<u8>>) -> Self {
        Chunk {
            pause: Duration::ZERO,
            bytes: bytes.into(),
        }
    }

    /// Bytes sent after `pause`.
    pub fn after(pause: Duration, bytes: impl Into<Vec<u8>>) -> Self {
        Chunk {
            pause,
            bytes: bytes.into(),
        }
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST /path?query HTTP/1.1`
    pub request_line: String,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Serves `chunks` (status 200, `text/event-stream`, chunked) to every request.
pub struct DripServer {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    finished: Arc<Mutex<Option<std::time::Instant>>>,
}

impl DripServer {
    /// Starts serving on 127.0.0.1 with a random port.
    pub fn start(chunks: Vec<Chunk>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the drip server");
        let port = listener.local_addr().expect("local addr").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let finished = Arc::new(Mutex::new(None));
        let (log, done) = (received.clone(), finished.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let chunks = chunks.clone();
                let (log, done) = (log.clone(), done.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &chunks, &log);
                    if let Ok(mut d) = done.lock() {
                        *d = Some(std::time::Instant::now());
                    }
                });
            }
        });
        DripServer {
            port,
            received,
            finished,
        }
    }

    /// When the last response body was completely sent, if one was.
    pub fn finished_at(&self) -> Option<std::time::Instant> {
        self.finished.lock().ok().and_then(|f| *f)
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, chunks: &[Chunk], log: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_owned();
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            }
            headers.push((name, value));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    if let Ok(mut l) = log.lock() {
        l.push(Received {
            request_line: request_line.trim_end().to_owned(),
            headers,
            body,
        });
    }
    let mut out = stream;
    out.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    out.flush()?;
    for chunk in chunks {
        std::thread::sleep(chunk.pause);
        if chunk.bytes.is_empty() {
            // A zero-length chunk would end the body.
            continue;
        }
        write!(out, "{:x}\r\n", chunk.bytes.len())?;
        out.write_all(&chunk.bytes)?;
        out.write_all(b"\r\n")?;
        out.flush()?;
    }
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}
