//! One HTTP/1.0 GET against a port on the host's loopback address.
//!
//! In: a port on 127.0.0.1 (QEMU forwards it to the guest), a path, a time
//! limit. Out: the status code of the answer, or why there was none. Only
//! the status line is read; a connection that is accepted and then closed
//! or reset (what QEMU's user-mode network does while nothing listens in
//! the guest) is "no answer", never a pass. Never follows redirects, never
//! retries: the caller polls.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The longest status line read before giving up on an answer.
const STATUS_LINE_MAX: usize = 8192;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    /// An HTTP answer with this status code.
    Status(u16),
    /// No answer: refused, reset, closed early or too slow.
    NoAnswer(String),
    /// Something answered, but not with an HTTP status line.
    NotHttp(String),
}

impl ProbeResult {
    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        matches!(self, ProbeResult::Status(s) if (200..300).contains(s))
    }
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeResult::Status(s) => write!(f, "HTTP {s}"),
            ProbeResult::NoAnswer(why) => write!(f, "no answer ({why})"),
            ProbeResult::NotHttp(what) => write!(f, "not an HTTP answer: {what:?}"),
        }
    }
}

/// `GET path HTTP/1.0` on `127.0.0.1:port`, within `timeout` in all.
pub fn http_probe(port: u16, path: &str, timeout: Duration) -> ProbeResult {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => return ProbeResult::NoAnswer(describe(&e, timeout)),
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: ingot-boot-test\r\nAccept: */*\r\n\r\n"
    );
    if let Err(e) = stream
        .set_write_timeout(Some(timeout))
        .and_then(|()| stream.write_all(request.as_bytes()))
    {
        return ProbeResult::NoAnswer(describe(&e, timeout));
    }
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ProbeResult::NoAnswer(describe(&io::ErrorKind::TimedOut.into(), timeout));
        }
        if let Err(e) = stream.set_read_timeout(Some(left)) {
            return ProbeResult::NoAnswer(describe(&e, timeout));
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&chunk[..n]);
                if answer.contains(&b'\n') || answer.len() >= STATUS_LINE_MAX {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return ProbeResult::NoAnswer(describe(&e, timeout)),
        }
    }
    if answer.is_empty() {
        return ProbeResult::NoAnswer("the connection was closed without an answer".into());
    }
    parse_status_line(&answer)
}

/// `HTTP/1.x NNN reason` -> the status code.
fn parse_status_line(answer: &[u8]) -> ProbeResult {
    let end = answer
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(answer.len());
    let line = String::from_utf8_lossy(&answer[..end]);
    let line = line.trim_end();
    let mut words = line.split_ascii_whitespace();
    let version = words.next().unwrap_or("");
    let code = words.next().unwrap_or("");
    if !version.starts_with("HTTP/") || code.len() != 3 {
        return ProbeResult::NotHttp(line.chars().take(80).collect());
    }
    match code.parse::<u16>() {
        Ok(c) if (100..600).contains(&c) => ProbeResult::Status(c),
        _ => ProbeResult::NotHttp(line.chars().take(80).collect()),
    }
}

fn describe(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            "connection reset".into()
        }
        io::ErrorKind::BrokenPipe => "connection closed while sending the request".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("nothing within {} s", timeout.as_secs_f64())
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status_line(b"HTTP/1.1 204 No Content\r\n"),
            ProbeResult::Status(204)
        );
        assert_eq!(parse_status_line(b"HTTP/1.0 500"), ProbeResult::Status(500));
        assert!(matches!(
            parse_status_line(b"SSH-2.0-OpenSSH_9.2\r\n"),
            ProbeResult::NotHttp(_)
        ));
        assert!(matches!(
            parse_status_line(b"HTTP/1.1 2000 x\r\n"),
            ProbeResult::NotHttp(_)
        ));
        assert!(ProbeResult::Status(299).is_success());
        assert!(!ProbeResult::Status(301).is_success());
    }
}
