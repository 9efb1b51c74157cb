//! Fetching URLs: `file://` from disk, `http://` and `https://` through a
//! [`Transport`] (by default [`Http`]: `ureq` with rustls, no OpenSSL),
//! with retries and backoff on transient failures, and the verified fetch
//! of a file whose checksum and size the metadata gives.
//!
//! In: a URL and what to do with its bytes. Out: the result, or an error
//! naming the URL and the cause. Transient: connection errors, timeouts,
//! a body cut short, HTTP 408, 429 and 5xx; they are retried
//! [`Options::retries`] times, waiting [`Options::backoff`] and twice as
//! long each time. Not transient: 404 and 410 ([`RepoError::NotFound`]),
//! other 4xx, a `file://` path that does not exist, a checksum that does
//! not match.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cache::Cache;
use super::decode::Limits;
use super::error::{RepoError, Result};
use super::package::Checksum;
use crate::progress::Task;

/// How the client fetches.
#[derive(Debug, Clone)]
pub struct Options {
    /// Use only the cache: no request at all.
    pub offline: bool,
    /// Packages downloaded at once.
    pub jobs: usize,
    /// Retries after the first attempt, for transient failures.
    pub retries: u32,
    /// The first wait before a retry; it doubles each time.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    /// The longest wait for any bytes while a response comes in.
    pub read_timeout: Duration,
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            offline: false,
            jobs: 4,
            retries: 3,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            limits: Limits::default(),
        }
    }
}

/// One attempt at a URL went wrong.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try (the cause, for the message).
    Transient(String),
    /// Final.
    Fatal(RepoError),
}

/// What opens `http://` and `https://` URLs, one attempt each (the
/// retries are the caller's). The seam a test or another client plugs in.
pub trait Transport: Send + Sync {
    fn open(&self, url: &str) -> std::result::Result<Box<dyn Read + Send>, Failure>;
}

/// HTTP(S) with `ureq` and rustls; proxies from the usual environment
/// variables.
pub struct Http {
    agent: ureq::Agent,
}

impl Http {
    pub fn new(options: &Options) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .timeout_recv_response(Some(options.read_timeout))
            .user_agent(concat!("ingot/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http { agent }
    }
}

impl Transport for Http {
    fn open(&self, url: &str) -> std::result::Result<Box<dyn Read + Send>, Failure> {
        let response = match self.agent.get(url).call() {
            Ok(r) => r,
            Err(e) => {
                return Err(match e {
                    ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_) => {
                        Failure::Fatal(RepoError::Unreachable {
                            url: url.to_string(),
                            attempts: 1,
                            cause: e.to_string(),
                        })
                    }
                    e => Failure::Transient(e.to_string()),
                });
            }
        };
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(Box::new(response.into_body().into_reader())),
            404 | 410 => Err(Failure::Fatal(RepoError::NotFound {
                url: url.to_string(),
                status,
            })),
            408 | 429 | 500..=599 => Err(Failure::Transient(format!("HTTP {status}"))),
            _ => Err(Failure::Fatal(RepoError::Http {
                url: url.to_string(),
                status,
            })),
        }
    }
}

/// What a consumer of a body says went wrong.
pub enum Consume {
    /// Reading failed (the transfer broke): transient.
    Io(io::Error),
    /// Wrong, but maybe only this time (a body cut short without an error):
    /// retried, and this error is the answer when the retries run out.
    Retry(RepoError),
    /// Final.
    Fatal(RepoError),
}

impl From<io::Error> for Consume {
    fn from(e: io::Error) -> Consume {
        Consume::Io(e)
    }
}

impl From<RepoError> for Consume {
    fn from(e: RepoError) -> Consume {
        Consume::Fatal(e)
    }
}

/// The path a `file://` URL names (`%XX` decoded).
pub fn file_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("file://")?;
    let b = rest.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = rest
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

/// Whether ingot can fetch this URL.
pub fn check_url(url: &str) -> Result<()> {
    if url.starts_with("file:///") || url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(RepoError::UnsupportedUrl {
            url: url.to_string(),
        })
    }
}

/// `rel` under the base URL `base` (a full URL stays as it is).
pub fn join(base: &str, rel: &str) -> String {
    if rel.contains("://") {
        return rel.to_string();
    }
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        rel.trim_start_matches('/')
    )
}

/// Opens URLs with retries.
pub struct Fetcher {
    pub(super) transport: Box<dyn Transport>,
    pub(super) options: Options,
}

impl Fetcher {
    fn open_once(&self, url: &str) -> std::result::Result<Box<dyn Read + Send>, Failure> {
        if let Some(path) = file_path(url) {
            return match std::fs::File::open(&path) {
                Ok(f) => Ok(Box::new(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(Failure::Fatal(RepoError::NoSuchFile {
                        url: url.to_string(),
                    }))
                }
                Err(source) => Err(Failure::Fatal(RepoError::Read { path, source })),
            };
        }
        check_url(url).map_err(Failure::Fatal)?;
        self.transport.open(url)
    }

    /// Open `url` and hand its body to `consume`; on a transient failure
    /// (opening or reading), wait and start over.
    pub fn get<T>(
        &self,
        url: &str,
        mut consume: impl FnMut(&mut dyn Read) -> std::result::Result<T, Consume>,
    ) -> Result<T> {
        let attempts = self.options.retries + 1;
        let mut wait = self.options.backoff;
        let mut last: Option<RepoError> = None;
        for attempt in 1..=attempts {
            if attempt > 1 {
                std::thread::sleep(wait);
                wait = wait.saturating_mul(2);
            }
            let cause = match self.open_once(url) {
                Ok(mut body) => match consume(&mut body) {
                    Ok(v) => return Ok(v),
                    Err(Consume::Fatal(e)) => return Err(e),
                    Err(Consume::Retry(e)) => {
                        last = Some(e);
                        continue;
                    }
                    Err(Consume::Io(e)) => e.to_string(),
                },
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(cause)) => cause,
            };
            last = Some(RepoError::Unreachable {
                url: url.to_string(),
                attempts,
                cause,
            });
        }
        Err(last.expect("at least one attempt"))
    }

    /// The whole body of a small file (at most `max` bytes).
    pub fn get_small(&self, url: &str, max: u64) -> Result<Vec<u8>> {
        self.get(url, |body| {
            let mut out = Vec::new();
            body.take(max + 1).read_to_end(&mut out)?;
            if out.len() as u64 > max {
                return Err(Consume::Fatal(RepoError::over(
                    format!("`{url}`"),
                    "max_index",
                    max,
                    "bytes",
                )));
            }
            Ok(out)
        })
    }

    /// Download `url` into a new file of the cache's work folder,
    /// checking the size (when known) and the checksum as the bytes come:
    /// the file, its writeback started, when both match. It is not in the
    /// cache yet: [`Cache::put`] or a [`super::cache::Batch`] puts it there.
    pub fn get_checked(
        &self,
        cache: &Cache,
        url: &str,
        want: &Checksum,
        size: Option<u64>,
        what: &str,
        task: &Task,
    ) -> Result<tempfile::NamedTempFile> {
        let max = size.unwrap_or(self.options.limits.max_decompressed);
        // Bytes reported so far: a retry reports only what goes past them.
        let mut reported = 0u64;
        self.get(url, |body| {
            let mut tmp = cache.temp()?;
            let mut hasher = want.kind.hasher();
            let mut buf = vec![0u8; 64 << 10];
            let mut got = 0u64;
            loop {
                let n = body.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                got += n as u64;
                if got > max {
                    return Err(Consume::Fatal(RepoError::Size {
                        what: what.to_string(),
                        url: url.to_string(),
                        expected: max,
                        actual: got,
                    }));
                }
                hasher.update(&buf[..n]);
                tmp.write_all(&buf[..n]).map_err(|source| {
                    Consume::Fatal(RepoError::Write {
                        path: tmp.path().to_path_buf(),
                        source,
                    })
                })?;
                if got > reported {
                    task.advance(got - reported);
                    reported = got;
                }
            }
            if let Some(expected) = size
                && got != expected
            {
                return Err(Consume::Retry(RepoError::Size {
                    what: what.to_string(),
                    url: url.to_string(),
                    expected,
                    actual: got,
                }));
            }
            let actual = hasher.finish();
            if actual != want.hex {
                return Err(Consume::Fatal(RepoError::Checksum {
                    what: what.to_string(),
                    url: url.to_string(),
                    kind: want.kind.name(),
                    expected: want.hex.clone(),
                    actual,
                }));
            }
            cache.start_writeback(&tmp);
            Ok(tmp)
        })
    }
}

/// A mirror list's URLs: one per line, `#` comments and blank lines
/// skipped, variables substituted; only URLs ingot can fetch are kept.
pub fn parse_mirrorlist(text: &str, vars: &super::config::Vars) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| vars.substitute(l))
        .filter(|u| check_url(u).is_ok())
        .take(1000)
        .collect()
}

/// Read a local key or configuration file of at most `max` bytes.
pub fn read_file_max(path: &Path, max: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).map_err(|source| RepoError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|source| RepoError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if out.len() as u64 > max {
        return Err(RepoError::over(
            format!("`{}`", path.display()),
            "max_index",
            max,
            "bytes",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_and_decode() {
        assert_eq!(join("http://h/a/", "repodata/x"), "http://h/a/repodata/x");
        assert_eq!(
            join("http://h/a", "/Packages/x.rpm"),
            "http://h/a/Packages/x.rpm"
        );
        assert_eq!(join("http://h/a", "https://o/x.rpm"), "https://o/x.rpm");
        assert_eq!(
            file_path("file:///tmp/a%20b"),
            Some(PathBuf::from("/tmp/a b"))
        );
        assert_eq!(file_path("http://x"), None);
        assert!(check_url("ftp://x/").is_err());
        let v = super::super::config::Vars::new("9", "aarch64");
        assert_eq!(
            parse_mirrorlist(
                "# c\n\nhttps://m/$releasever/$basearch/\nftp://no/\n  file:///r/ \n",
                &v
            ),
            ["https://m/9/aarch64/", "file:///r/"]
        );
    }
}
