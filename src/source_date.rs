//! The one place time enters ingot.
//!
//! In: the `SOURCE_DATE_EPOCH` environment variable (read by the caller and
//! passed in) and a fallback the input itself provides (for a package, the
//! newest changelog entry). Out: the seconds since the epoch every
//! timestamp in an artifact uses: build time, file mtimes, signature time,
//! install time. Never reads the clock: two runs of the same inputs get the
//! same time.

use std::fmt;

/// Where the build's time came from, for messages and manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `SOURCE_DATE_EPOCH` was set.
    Environment,
    /// The newest changelog entry of the spec.
    Changelog,
    /// Nothing said anything: the epoch itself.
    Epoch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceDate {
    pub seconds: u64,
    pub origin: Origin,
}

impl fmt::Display for SourceDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.origin {
            Origin::Environment => "SOURCE_DATE_EPOCH",
            Origin::Changelog => "the newest changelog entry",
            Origin::Epoch => "no source (1970-01-01)",
        };
        write!(f, "{} (from {from})", self.seconds)
    }
}

/// `SOURCE_DATE_EPOCH` as the reproducible-builds.org spec defines it:
/// a decimal count of seconds. Anything else is an error, not a silent
/// fallback, so a typo cannot make builds differ.
pub fn parse_env(value: Option<&str>) -> Result<Option<u64>, String> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("SOURCE_DATE_EPOCH=`{v}` is not a whole number of seconds")),
    }
}

/// The environment's value when given, else the input's own date, else 0.
pub fn resolve(env: Option<u64>, from_input: Option<u64>) -> SourceDate {
    match (env, from_input) {
        (Some(s), _) => SourceDate {
            seconds: s,
            origin: Origin::Environment,
        },
        (None, Some(s)) => SourceDate {
            seconds: s,
            origin: Origin::Changelog,
        },
        (None, None) => SourceDate {
            seconds: 0,
            origin: Origin::Epoch,
        },
    }
}

/// Read `SOURCE_DATE_EPOCH` from the process environment.
pub fn from_environment() -> Result<Option<u64>, String> {
    parse_env(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wins_over_changelog() {
        assert_eq!(resolve(Some(5), Some(9)).seconds, 5);
        assert_eq!(resolve(None, Some(9)).origin, Origin::Changelog);
        assert_eq!(resolve(None, None).seconds, 0);
    }

    #[test]
    fn malformed_source_date_epoch_is_an_error() {
        assert_eq!(parse_env(Some("1700000000")), Ok(Some(1_700_000_000)));
        assert_eq!(parse_env(Some("")), Ok(None));
        assert!(parse_env(Some("yesterday")).is_err());
        assert!(parse_env(Some("-5")).is_err());
    }
}
