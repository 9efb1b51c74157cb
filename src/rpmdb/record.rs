//! An installed package's record: the package's immutable region, byte for
//! byte, then the tags rpm adds at install time, in tag order, with their
//! data naturally aligned (verified against the record rpm 4.18 wrote for a
//! fixture package: `rpm-install-oracle/`).

use crate::rpm::header::{Header, HeaderError, NewEntry, Value, region_plus, tag};

/// INSTALLCOLOR rpm records on x86_64 and aarch64 (also for noarch).
pub const INSTALL_COLOR: u32 = 3;

/// The database record for a package whose signature header is `sig` and
/// main header `h`, installed at `install_time` (the source date).
pub fn installed_record(
    sig: &Header,
    h: &Header,
    install_time: u32,
) -> Result<Vec<u8>, HeaderError> {
    let files = h.strings(tag::BASENAMES).len();
    let mut extra = Vec::new();
    let mut copy = |from: u32, to: u32| {
        if let Some(v) = sig.get(from) {
            extra.push(NewEntry { tag: to, value: v });
        }
    };
    copy(tag::SIG_SIZE, tag::SIGSIZE);
    copy(tag::SIG_PGP, tag::SIGPGP);
    copy(tag::SIG_MD5, tag::SIGMD5);
    copy(tag::SIG_RSA, tag::RSAHEADER);
    copy(tag::SIG_SHA1, tag::SHA1HEADER);
    copy(tag::SIG_LONGSIZE, tag::LONGSIGSIZE);
    copy(tag::SIG_LONGARCHIVESIZE, tag::LONGARCHIVESIZE);
    copy(tag::SIG_SHA256, tag::SHA256HEADER);
    copy(tag::SIG_PAYLOADSIZE, tag::ARCHIVESIZE);
    extra.push(NewEntry {
        tag: tag::INSTALLTIME,
        value: Value::Int32(vec![install_time]),
    });
    if files > 0 {
        extra.push(NewEntry {
            tag: tag::FILESTATES,
            value: Value::Char(vec![0; files]),
        });
    }
    extra.push(NewEntry {
        tag: tag::INSTALLCOLOR,
        value: Value::Int32(vec![INSTALL_COLOR]),
    });
    extra.push(NewEntry {
        tag: tag::INSTALLTID,
        value: Value::Int32(vec![install_time]),
    });
    region_plus(h, extra)
}
