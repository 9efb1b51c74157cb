//! The one place time enters ingot.
//!
//! In: the `SOURCE_DATE_EPOCH` environment variable (read by the caller and
//! passed in) and a fallback the input itself provides (for a package, the
//! newest changelog entry). Out: the seconds since the epoch every
//! timestamp in an artifact uses: build time, file mtimes, signature time,
//! install time. Never reads the clock: two runs of the same inputs get the
//! same time.
//!
//! Also the one place a time becomes a calendar date and back ([`utc`],
//! [`midnight_utc`]): the SBOM's `created`, FAT timestamps, changelog dates
//! and the VHD epoch all go through it. The calendar arithmetic is `jiff`'s
//! (proleptic Gregorian, years -9999 to 9999), built without its time zone
//! database: everything here is UTC. `jiff` rather than `time` for its
//! civil types that say what they are (`civil::Date`, `tz::Offset`) and
//! because it needs no other crate for this.

use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::Offset;

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

/// The UTC calendar date and time `seconds` after 1970-01-01T00:00:00Z.
/// Past the calendar's last instant (9999-12-30T22:00:00Z, `jiff`'s
/// `Timestamp::MAX`) it is that instant.
pub fn utc(seconds: u64) -> DateTime {
    let last = jiff::Timestamp::MAX;
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(last);
    Offset::UTC.to_datetime(at)
}

/// Seconds from 1970-01-01T00:00:00Z to midnight UTC starting the day
/// `year-month-day` (negative before 1970); `None` for a day the calendar
/// does not have (2023-02-29, month 13, ...).
pub fn midnight_utc(year: u16, month: u8, day: u8) -> Option<i64> {
    let small = |v| i8::try_from(v).ok();
    let date = Date::new(i16::try_from(year).ok()?, small(month)?, small(day)?).ok()?;
    let at = Offset::UTC
        .to_timestamp(date.to_datetime(Time::midnight()))
        .ok()?;
    Some(at.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_of_known_instants() {
        let text = |s| utc(s).strftime("%Y-%m-%dT%H:%M:%S").to_string();
        assert_eq!(text(0), "1970-01-01T00:00:00");
        assert_eq!(text(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(text(1_700_000_001), "2023-11-14T22:13:21");
        assert_eq!(text(4_107_542_399), "2100-02-28T23:59:59");
        assert_eq!(text(u64::MAX), "9999-12-30T22:00:00");
    }

    #[test]
    fn midnights_of_known_days_and_days_that_do_not_exist() {
        assert_eq!(midnight_utc(1970, 1, 1), Some(0));
        assert_eq!(midnight_utc(2000, 1, 1), Some(946_684_800));
        assert_eq!(midnight_utc(2024, 2, 29), Some(1_709_164_800));
        assert_eq!(midnight_utc(1969, 12, 31), Some(-86_400));
        assert_eq!(midnight_utc(0, 1, 1), Some(-62_167_219_200));
        assert_eq!(midnight_utc(10_000, 1, 1), None);
        assert_eq!(midnight_utc(2023, 2, 29), None);
        assert_eq!(midnight_utc(2100, 2, 29), None);
        assert_eq!(midnight_utc(2024, 13, 1), None);
        for s in [0u64, 86_400, 951_782_400, 1_709_164_800] {
            let d = utc(s);
            let (y, m, d) = (d.year() as u16, d.month() as u8, d.day() as u8);
            assert_eq!(midnight_utc(y, m, d), Some(s as i64));
        }
    }

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
