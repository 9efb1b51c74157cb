//! A loopback HTTP server for the repository tests: serves a folder on
//! 127.0.0.1 (a port the kernel picks), counts requests by path, and
//! injects failures on request. Stops (and joins its threads) when
//! dropped; a stalled connection is let go then too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to do to the next request(s) for a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status (and a short body).
    Status(u16),
    /// Promise the whole length, send half the body, close.
    Truncate,
    /// Read the request, answer nothing until the server stops.
    Stall,
    /// Promise the whole length, send half the body, then nothing more
    /// until the server stops (a download caught in flight).
    StallMidway,
}

#[derive(Default)]
struct State {
    /// Path -> faults to apply, one per request, in order.
    faults: BTreeMap<String, Vec<Fault>>,
    /// Path -> requests seen.
    hits: BTreeMap<String, u32>,
}

pub struct Server {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serve `root` until dropped.
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, dir) = (state.clone(), stop.clone(), root.to_path_buf());
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp, dir) = (st.clone(), sp.clone(), dir.clone());
                workers.push(std::thread::spawn(move || serve(conn, &dir, &st, &sp)));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Server {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL of `path` (relative to the served folder).
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// Apply `faults` to the next requests for `path`, one each.
    pub fn fail(&self, path: &str, faults: &[Fault]) {
        let key = format!("/{}", path.trim_start_matches('/'));
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(key)
            .or_default()
            .extend(faults);
    }

    /// Requests seen for `path`.
    pub fn hits(&self, path: &str) -> u32 {
        let key = format!("/{}", path.trim_start_matches('/'));
        self.state
            .lock()
            .unwrap()
            .hits
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Requests seen for every path.
    pub fn total_hits(&self) -> u32 {
        self.state.lock().unwrap().hits.values().sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, root: &Path, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() || first.is_empty() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    let fault = {
        let mut s = state.lock().unwrap();
        *s.hits.entry(path.clone()).or_default() += 1;
        s.faults
            .get_mut(&path)
            .and_then(|f| (!f.is_empty()).then(|| f.remove(0)))
    };
    let file = root.join(path.trim_start_matches('/'));
    let inside = !path.split('/').any(|c| c == "..");
    let body = if inside {
        std::fs::read(&file).ok()
    } else {
        None
    };
    let status = |conn: &mut TcpStream, code: u16, text: &str| {
        let msg = format!("{code} {text}\n");
        let _ = write!(
            conn,
            "HTTP/1.1 {code} {text}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
            msg.len()
        );
    };
    // The whole length promised, `part` of the body sent.
    let send = |conn: &mut TcpStream, b: &[u8], part: usize| {
        let _ = write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.len()
        );
        let _ = conn.write_all(&b[..part]);
        let _ = conn.flush();
    };
    let stall = || {
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    match (fault, body) {
        (Some(Fault::Status(code)), _) => status(&mut conn, code, "Injected"),
        (Some(Fault::Stall), _) => stall(),
        (Some(Fault::Truncate), Some(b)) => send(&mut conn, &b, b.len() / 2),
        (Some(Fault::StallMidway), Some(b)) => {
            send(&mut conn, &b, b.len() / 2);
            stall();
        }
        (_, None) => status(&mut conn, 404, "Not Found"),
        (_, Some(b)) => send(&mut conn, &b, b.len()),
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}
