//! Payload compression choices: `zstd[:LEVEL]`, `gzip[:LEVEL]`,
//! `xz[:LEVEL]`, `bzip2[:LEVEL]`, `none`.
//!
//! The default is zstd at level 3: Amazon Linux 2023's own packages use
//! level 19, which is about 30 times slower for about 5% fewer bytes.
//! Multithreaded zstd is never used: it changes the output bytes.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd(i32),
    Gzip(u32),
    Xz(u32),
    Bzip2(u32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(3)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Zstd(l) => write!(f, "zstd:{l}"),
            Compression::Gzip(l) => write!(f, "gzip:{l}"),
            Compression::Xz(l) => write!(f, "xz:{l}"),
            Compression::Bzip2(l) => write!(f, "bzip2:{l}"),
        }
    }
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, level) = match s.split_once(':') {
            Some((k, l)) => (k, Some(l)),
            None => (s, None),
        };
        let lvl = |default: u32, max: u32| -> Result<u32, String> {
            match level {
                None => Ok(default),
                Some(l) => match l.parse::<u32>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "{kind} level `{l}` is not a number from 1 to {max}"
                    )),
                },
            }
        };
        Ok(match kind {
            "zstd" => Compression::Zstd(lvl(3, 22)? as i32),
            "gzip" => Compression::Gzip(lvl(9, 9)?),
            "xz" => Compression::Xz(lvl(6, 9)?),
            "bzip2" => Compression::Bzip2(lvl(9, 9)?),
            "none" if level.is_none() => Compression::None,
            "none" => return Err("`none` takes no level".to_string()),
            _ => {
                return Err(format!(
                    "unknown compression `{kind}`; use zstd, gzip, xz, bzip2 or none, optionally with :LEVEL"
                ));
            }
        })
    }
}

impl From<Compression> for ::rpm::CompressionWithLevel {
    fn from(c: Compression) -> Self {
        match c {
            Compression::None => ::rpm::CompressionWithLevel::None,
            Compression::Zstd(l) => ::rpm::CompressionWithLevel::Zstd(l),
            Compression::Gzip(l) => ::rpm::CompressionWithLevel::Gzip(l),
            Compression::Xz(l) => ::rpm::CompressionWithLevel::Xz(l),
            Compression::Bzip2(l) => ::rpm::CompressionWithLevel::Bzip2(l),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_names_and_levels_parse() {
        assert_eq!("zstd".parse(), Ok(Compression::Zstd(3)));
        assert_eq!("zstd:19".parse(), Ok(Compression::Zstd(19)));
        assert_eq!("gzip:9".parse(), Ok(Compression::Gzip(9)));
        assert_eq!("xz".parse(), Ok(Compression::Xz(6)));
        assert_eq!("none".parse(), Ok(Compression::None));
        assert!("zstd:0".parse::<Compression>().is_err());
        assert!("zstd:23".parse::<Compression>().is_err());
        assert!("lz4".parse::<Compression>().is_err());
        assert!("none:3".parse::<Compression>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for c in [
            Compression::Zstd(19),
            Compression::Gzip(6),
            Compression::None,
        ] {
            assert_eq!(c.to_string().parse(), Ok(c));
        }
    }
}
