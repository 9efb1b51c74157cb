//! An installed package's record: the package's immutable region, byte for
//! byte, then the tags rpm adds when it reads and installs the package, in
//! tag order, with their data naturally aligned (verified against the
//! record rpm 4.18 wrote for a fixture package: `rpm-install-oracle/`, and
//! against real `rpm -i` on the packages of the real-RPM corpus).
//!
//! What rpm adds, and where it comes from:
//! - the signature header's tags, renamed where the main header has its
//!   own number for them ([`LEGACY_SIGS`], rpm 4.18's `headerMergeLegacySigs`
//!   in lib/package.c, with its quirks: a tag the main header already has
//!   is an error unless the table allows either place; a tag of the wrong
//!   type or count stops the merge, keeping what was merged before it);
//! - `INSTPREFIXES` for a relocatable package installed where it was built
//!   to go (rpm's `addPrefixes` in lib/rpmfi.c: a copy of `PREFIXES`);
//! - `INSTALLTIME`, `FILESTATES`, `INSTALLCOLOR`, `INSTALLTID`.

use crate::rpm::header::{Header, HeaderError, NewEntry, Type, Value, region_plus, tag};

/// INSTALLCOLOR rpm records on x86_64 and aarch64 (also for noarch).
pub const INSTALL_COLOR: u32 = 3;

/// `PREFIXES` / `INSTPREFIXES` (rpmtag.h).
const PREFIXES: u32 = 1098;
const INSTPREFIXES: u32 = 1099;

/// One row of rpm's signature-to-header translation table: the tag in the
/// signature header, the tag it gets in the installed header, the data
/// type that tag must have, the count it must have (0: any), and whether
/// the tag may already be in the main header instead (rpm's "quirk").
struct Legacy {
    sig: u32,
    to: u32,
    ty: Type,
    count: u32,
    either: bool,
}

/// rpm 4.18's table, in its order (the order matters: a bad entry stops
/// the merge there).
#[rustfmt::skip]
const LEGACY_SIGS: &[Legacy] = &[
    Legacy { sig: tag::SIG_SIZE, to: tag::SIGSIZE, ty: Type::Int32, count: 1, either: false },
    Legacy { sig: tag::SIG_PGP, to: tag::SIGPGP, ty: Type::Bin, count: 0, either: false },
    Legacy { sig: tag::SIG_MD5, to: tag::SIGMD5, ty: Type::Bin, count: 16, either: false },
    Legacy { sig: tag::SIG_GPG, to: tag::SIGGPG, ty: Type::Bin, count: 0, either: false },
    Legacy { sig: tag::SIG_PAYLOADSIZE, to: tag::ARCHIVESIZE, ty: Type::Int32, count: 1, either: true },
    Legacy { sig: tag::SIG_FILESIGNATURES, to: tag::FILESIGNATURES, ty: Type::StringArray, count: 0, either: true },
    Legacy { sig: tag::SIG_FILESIGNATURELENGTH, to: tag::FILESIGNATURELENGTH, ty: Type::Int32, count: 1, either: true },
    Legacy { sig: tag::SIG_VERITYSIGNATURES, to: tag::SIG_VERITYSIGNATURES, ty: Type::StringArray, count: 0, either: false },
    Legacy { sig: tag::SIG_VERITYSIGNATUREALGO, to: tag::SIG_VERITYSIGNATUREALGO, ty: Type::Int32, count: 1, either: false },
    Legacy { sig: tag::SIG_SHA1, to: tag::SHA1HEADER, ty: Type::String, count: 1, either: false },
    Legacy { sig: tag::SIG_SHA256, to: tag::SHA256HEADER, ty: Type::String, count: 1, either: false },
    Legacy { sig: tag::SIG_DSA, to: tag::DSAHEADER, ty: Type::Bin, count: 0, either: false },
    Legacy { sig: tag::SIG_RSA, to: tag::RSAHEADER, ty: Type::Bin, count: 0, either: false },
    Legacy { sig: tag::SIG_LONGSIZE, to: tag::LONGSIGSIZE, ty: Type::Int64, count: 1, either: false },
    Legacy { sig: tag::SIG_LONGARCHIVESIZE, to: tag::LONGARCHIVESIZE, ty: Type::Int64, count: 1, either: false },
];

/// rpm refuses a signature tag with more elements than this.
const MAX_SIG_COUNT: u32 = 16 * 1024 * 1024;

/// The signature header's tags as rpm merges them into the main header
/// (see the module doc). An error is what rpm reports as "invalid
/// signature tag" and refuses the package for.
pub fn merged_signature_tags(sig: &Header, h: &Header) -> Result<Vec<NewEntry>, HeaderError> {
    for l in LEGACY_SIGS {
        // A tag the main header has too: an error, except where the table
        // allows it there when the signature header lacks it.
        let allowed_in_main = l.either && !sig.has(l.sig);
        if h.has(l.to) && !allowed_in_main {
            return Err(HeaderError(format!(
                "invalid signature tag {}: the package header has it too",
                l.to
            )));
        }
    }
    let mut out = Vec::new();
    for l in LEGACY_SIGS {
        let (Some(e), Some(value)) = (sig.entry(l.sig), sig.get(l.sig)) else {
            continue;
        };
        let bad_count =
            e.count < 1 || e.count > MAX_SIG_COUNT || (l.count != 0 && e.count != l.count);
        if e.ty != l.ty || bad_count {
            // rpm stops merging at the first tag it does not like.
            break;
        }
        out.push(NewEntry { tag: l.to, value });
    }
    Ok(out)
}

/// The database record for a package whose signature header is `sig` and
/// main header `h`, installed at `install_time` (the source date).
pub fn installed_record(
    sig: &Header,
    h: &Header,
    install_time: u32,
) -> Result<Vec<u8>, HeaderError> {
    let files = h.strings(tag::BASENAMES).len();
    let mut extra = merged_signature_tags(sig, h)?;
    if let Some(prefixes) = h.get(PREFIXES)
        && !h.has(INSTPREFIXES)
        && matches!(&prefixes, Value::StringArray(v) if !v.is_empty())
    {
        extra.push(NewEntry {
            tag: INSTPREFIXES,
            value: prefixes,
        });
    }
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
