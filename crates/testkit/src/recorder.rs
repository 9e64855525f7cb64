//! An HTTP server that records every request with its arrival time and answers 200 JSON:
//! a fake TTS service whose log shows when each sentence arrived.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Hit {
    /// When its body had been read.
    pub at: Instant,
    /// Method and path, e.g. `POST /api/tts/synthesize`.
    pub line: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The body as JSON (`null` if it was not JSON).
    pub body: serde_json::Value,
}

/// Records requests on 127.0.0.1 with a random port.
pub struct Recorder {
    port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Recorder {
    /// Starts answering `200 {"status":"ok"}` to everything.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recorder");
        let port = listener.local_addr().expect("local addr").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let log = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &log);
                });
            }
        });
        Recorder { port, hits }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests to `path` so far, in arrival order.
    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .map(|h| {
                h.iter()
                    .filter(|x| x.line.split(' ').nth(1) == Some(path))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Hit>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_owned();
        let (mut length, mut authorization) = (0usize, None);
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => authorization = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        if let Ok(mut l) = log.lock() {
            l.push(Hit {
                at: Instant::now(),
                line: line
                    .rsplit_once(' ')
                    .map_or(line.as_str(), |x| x.0)
                    .to_owned(),
                authorization,
                body: serde_json::from_slice(&body).unwrap_or_default(),
            });
        }
        let reply = br#"{"status":"ok"}"#;
        let mut out = stream.try_clone()?;
        write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        )?;
        out.write_all(reply)?;
        out.flush()?;
    }
}
