//! Errors of reading repository configuration, fetching metadata and
//! packages, and checking them.
//!
//! Every message names what it is about: the `.repo` file and line, the
//! URL and the cause, the package and the checksum it should have had, or
//! the limit a hostile input went past (by the name of its constant).

use std::io;
use std::path::PathBuf;

/// Something about a repository went wrong.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// A `.repo` file (or a dnf variable file) is not what dnf reads.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Config {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    /// A repository section lacks what every repository needs.
    #[error("`{}`: repository `{repo}` has no baseurl, mirrorlist or metalink", path.display())]
    NoSource { path: PathBuf, repo: String },

    /// A local file (configuration, key, cache entry) cannot be read or
    /// written.
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A path inside a root folder that goes through more than 40
    /// symlinks (a loop).
    #[error("`{path}`: more than 40 symlinks inside the root folder `{}`", root.display())]
    SymlinkLoop { root: PathBuf, path: String },

    /// A URL whose scheme is not `file`, `http` or `https`.
    #[error("`{url}`: only file://, http:// and https:// URLs are supported")]
    UnsupportedUrl { url: String },

    /// The server answered 404 (or 410): the file is not there.
    #[error("`{url}`: not found (HTTP {status})")]
    NotFound { url: String, status: u16 },

    /// A `file://` URL that names no file.
    #[error("`{url}`: no such file")]
    NoSuchFile { url: String },

    /// Any other HTTP status that is not worth retrying (4xx).
    #[error("`{url}`: the server answered HTTP {status}")]
    Http { url: String, status: u16 },

    /// The URL could not be fetched, after every retry.
    #[error("`{url}`: unreachable after {attempts} attempt(s): {cause}")]
    Unreachable {
        url: String,
        attempts: u32,
        cause: String,
    },

    /// Every URL a repository offers failed; the last failure follows.
    #[error("repository `{repo}`: none of its {tried} URL(s) works")]
    NoWorkingUrl {
        repo: String,
        tried: usize,
        #[source]
        last: Box<RepoError>,
    },

    /// The `repomd.xml` fetched has none of the hashes the repository's
    /// metalink lists for it (a stale or tampered mirror).
    #[error(
        "repository `{repo}`: repomd.xml (`{url}`) has none of the hashes its metalink `{metalink}` lists (its sha256 is {sha256})"
    )]
    MetalinkHash {
        repo: String,
        url: String,
        metalink: String,
        sha256: String,
    },

    /// A checksum type the metadata names that ingot refuses (md5) or does
    /// not know.
    #[error(
        "{what}: checksum type `{kind}` is not accepted (sha1, sha224, sha256, sha384, sha512 are)"
    )]
    ChecksumType { what: String, kind: String },

    /// What was fetched is not what the metadata promised.
    #[error("{what} (`{url}`): {kind} checksum mismatch: expected {expected}, got {actual}")]
    Checksum {
        what: String,
        url: String,
        kind: &'static str,
        expected: String,
        actual: String,
    },

    #[error("{what} (`{url}`): size mismatch: expected {expected} bytes, got {actual}")]
    Size {
        what: String,
        url: String,
        expected: u64,
        actual: u64,
    },

    /// The repository index has no record of the kind needed.
    #[error("repository `{repo}`: its repomd.xml lists no `{kind}` record")]
    NoRecord { repo: String, kind: String },

    /// Metadata that does not parse (XML, numbers, required attributes).
    #[error("{what}: {message}")]
    Metadata { what: String, message: String },

    /// Metadata went past one of the limits in [`super::Limits`].
    #[error("{what}: more than {max} {unit} ({limit})")]
    Limit {
        what: String,
        /// The limit's name as the `Limits` field (or the constant)
        /// spells it.
        limit: &'static str,
        max: u64,
        unit: &'static str,
    },

    /// The SQLite form of primary (`primary_db`) cannot be read.
    #[error("{what}: cannot read the SQLite metadata")]
    Sqlite {
        what: String,
        #[source]
        source: rusqlite::Error,
    },

    /// `offline`: the repository's metadata was never fetched.
    #[error("offline: repository `{repo}` has no metadata in the cache `{}`", cache.display())]
    OfflineNoMetadata { repo: String, cache: PathBuf },

    /// `offline`: packages that are not in the cache.
    #[error("offline: not in the cache: {}", packages.join(", "))]
    NotCached { packages: Vec<String> },

    /// gpgcheck or repo_gpgcheck (`check`) is on but the repository names
    /// no key.
    #[error("repository `{repo}`: {check} is on but no gpgkey is given")]
    NoKey { repo: String, check: &'static str },

    /// repo_gpgcheck: there is no detached signature of `repomd.xml` at
    /// `url` (online: the server has none; offline: the cache has none).
    #[error(
        "repository `{repo}`: repo_gpgcheck is on but repomd.xml has no signature: `{url}` not found"
    )]
    RepomdUnsigned { repo: String, url: String },

    /// repo_gpgcheck: the signature of `repomd.xml` does not verify (the
    /// index was changed, or the signature is damaged).
    #[error("repository `{repo}`: the signature `{url}` of repomd.xml does not verify: {cause}")]
    RepomdBadSignature {
        repo: String,
        url: String,
        cause: String,
    },

    /// repo_gpgcheck: `repomd.xml` is signed, but not by a key of the
    /// repository.
    #[error(
        "repository `{repo}`: repomd.xml is signed (`{url}`) with a key the repository does not trust ({cause})"
    )]
    RepomdUnknownKey {
        repo: String,
        url: String,
        cause: String,
    },

    /// A key file that is not an armored OpenPGP public key.
    #[error("`{source_name}`: not an armored OpenPGP public key")]
    Key {
        source_name: String,
        #[source]
        source: ::rpm::Error,
    },

    /// gpgcheck is on and the package carries no header signature.
    #[error("package `{package}` is not signed (gpgcheck is on for repository `{repo}`)")]
    Unsigned { package: String, repo: String },

    /// The package is signed, but not by a key of the repository.
    #[error(
        "package `{package}` is signed with a key repository `{repo}` does not trust ({cause})"
    )]
    UnknownKey {
        package: String,
        repo: String,
        cause: String,
    },

    /// A signature or digest inside the package does not verify.
    #[error("package `{package}`: bad signature or digest: {cause}")]
    BadSignature { package: String, cause: String },
}

impl RepoError {
    /// `what` went past the limit `limit` (the `Limits` field's name) of
    /// `max` `unit`.
    pub fn over(
        what: impl Into<String>,
        limit: &'static str,
        max: u64,
        unit: &'static str,
    ) -> RepoError {
        RepoError::Limit {
            what: what.into(),
            limit,
            max,
            unit,
        }
    }

    /// Whether this error names a limit (hostile or absurd metadata).
    pub fn limit(&self) -> Option<&'static str> {
        match self {
            RepoError::Limit { limit, .. } => Some(limit),
            RepoError::NoWorkingUrl { last, .. } => last.limit(),
            _ => None,
        }
    }
}

pub type Result<T, E = RepoError> = std::result::Result<T, E>;
