//! The index rows rpm writes for an installed package: one table per
//! indexed tag, rows `(key, hnum, idx)`.
//!
//! In: an installed package's header. Out: every row rpm 4.18's
//! `tag2index()` (lib/rpmdb.c) would write for it, in the order rpm writes
//! them. The rules: one row per array element with idx = its position
//! (duplicates kept); Requirename leaves out install-only prerequisites;
//! Triggername drops repeats; file trigger tables take idx from their
//! index tags; Group falls back to "Unknown"; rich dependencies add one row
//! per name inside them (names in an `if`/`unless` condition get a `!`);
//! Installtid's key is the raw little-endian u32, Sigmd5's the 16 raw bytes.

use crate::rpm::header::{Header, Value, tag};

/// Index tables in the order rpm creates them (`rpmdb --initdb`).
pub const TABLES: &[(&str, u32)] = &[
    ("Name", tag::NAME),
    ("Basenames", tag::BASENAMES),
    ("Group", tag::GROUP),
    ("Requirename", tag::REQUIRENAME),
    ("Providename", tag::PROVIDENAME),
    ("Conflictname", tag::CONFLICTNAME),
    ("Obsoletename", tag::OBSOLETENAME),
    ("Triggername", TRIGGERNAME),
    ("Dirnames", tag::DIRNAMES),
    ("Installtid", tag::INSTALLTID),
    ("Sigmd5", tag::SIGMD5),
    ("Sha1header", tag::SHA1HEADER),
    ("Filetriggername", FILETRIGGERNAME),
    ("Transfiletriggername", TRANSFILETRIGGERNAME),
    ("Recommendname", tag::RECOMMENDNAME),
    ("Suggestname", tag::SUGGESTNAME),
    ("Supplementname", tag::SUPPLEMENTNAME),
    ("Enhancename", tag::ENHANCENAME),
];

const TRIGGERNAME: u32 = 1066;
const FILETRIGGERNAME: u32 = 5069;
const FILETRIGGERINDEX: u32 = 5070;
const TRANSFILETRIGGERNAME: u32 = 5079;
const TRANSFILETRIGGERINDEX: u32 = 5080;

// rpmsenseFlags (rpm's rpmds.h, 4.18).
const SENSE_POSTTRANS: u64 = 1 << 5;
const SENSE_PRETRANS: u64 = 1 << 7;
const SENSE_SCRIPT_PRE: u64 = 1 << 9;
const SENSE_SCRIPT_POST: u64 = 1 << 10;
const SENSE_SCRIPT_PREUN: u64 = 1 << 11;
const SENSE_SCRIPT_POSTUN: u64 = 1 << 12;
const SENSE_RPMLIB: u64 = 1 << 24;
const SENSE_KEYRING: u64 = 1 << 26;
const SENSE_META: u64 = 1 << 29;

/// A requirement needed only while installing (rpm's `isTransientReq`).
pub fn is_transient_require(flags: u64) -> bool {
    let install_only = SENSE_SCRIPT_PRE
        | SENSE_SCRIPT_POST
        | SENSE_RPMLIB
        | SENSE_KEYRING
        | SENSE_PRETRANS
        | SENSE_POSTTRANS;
    let erase = SENSE_SCRIPT_PREUN | SENSE_SCRIPT_POSTUN;
    flags & install_only != 0 && flags & erase == 0 && flags & SENSE_META == 0
}

/// One row of an index table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub table: &'static str,
    pub key: Key,
    pub idx: u32,
}

/// Keys are text except Installtid and Sigmd5, which are blobs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Text(String),
    Blob(Vec<u8>),
}

/// Every index row for `h`, in rpm's order.
pub fn rows(h: &Header) -> Vec<Row> {
    let mut out = Vec::new();
    for &(table, t) in TABLES {
        rows_for(h, table, t, &mut out);
    }
    out
}

fn rows_for(h: &Header, table: &'static str, t: u32, out: &mut Vec<Row>) {
    let keys: Vec<Key> = match h.get(t) {
        Some(Value::StringArray(v) | Value::I18nString(v)) => {
            v.into_iter().map(Key::Text).collect()
        }
        Some(Value::String(s)) => vec![Key::Text(s)],
        Some(Value::Int32(v)) => v
            .into_iter()
            .map(|n| Key::Blob(n.to_le_bytes().to_vec()))
            .collect(),
        Some(Value::Bin(b)) => vec![Key::Blob(b)],
        Some(_) => Vec::new(),
        None if t == tag::GROUP => vec![Key::Text("Unknown".into())],
        None => Vec::new(),
    };
    let rich_capable = matches!(
        t,
        tag::REQUIRENAME
            | tag::CONFLICTNAME
            | tag::SUGGESTNAME
            | tag::SUPPLEMENTNAME
            | tag::RECOMMENDNAME
            | tag::ENHANCENAME
    ) && matches!(
        h.entry(t).map(|e| e.ty),
        Some(crate::rpm::header::Type::StringArray)
    );
    let req_flags = if t == tag::REQUIRENAME {
        h.ints(tag::REQUIREFLAGS)
    } else {
        Vec::new()
    };
    let trig_index = match t {
        FILETRIGGERNAME => h.ints(FILETRIGGERINDEX),
        TRANSFILETRIGGERNAME => h.ints(TRANSFILETRIGGERINDEX),
        _ => Vec::new(),
    };
    for (i, key) in keys.iter().enumerate() {
        let idx = match t {
            FILETRIGGERNAME | TRANSFILETRIGGERNAME => match trig_index.get(i) {
                Some(&n) => n as u32,
                None => continue,
            },
            _ => i as u32,
        };
        if t == tag::REQUIRENAME && req_flags.get(i).is_some_and(|&f| is_transient_require(f)) {
            continue;
        }
        if t == TRIGGERNAME && keys[..i].contains(key) {
            continue;
        }
        out.push(Row {
            table,
            key: key.clone(),
            idx,
        });
        if let Key::Text(s) = key
            && rich_capable
            && s.starts_with('(')
        {
            for name in rich_names(s) {
                out.push(Row {
                    table,
                    key: Key::Text(name),
                    idx,
                });
            }
        }
    }
}

/// The names inside a rich dependency as rpm indexes them: sorted (with
/// the `!` of condition names counting in the sort), repeats dropped.
pub fn rich_names(text: &str) -> Vec<String> {
    let Ok(crate::spec::dep::Dependency::Rich { expr, .. }) = crate::spec::dep::parse(text) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    collect(&expr, false, &mut names);
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|n| match n.strip_prefix(' ') {
            Some(plain) => plain.to_string(),
            None => n,
        })
        .collect()
}

/// Names prefixed with ' ' (plain) or '!' (negated), walking as rpm's
/// parser callback does: the condition of `if`/`unless` is negated, and
/// an `else` branch repeats the condition's names inverted.
fn collect(r: &crate::spec::dep::Rich, neg: bool, out: &mut Vec<String>) {
    use crate::spec::dep::Rich;
    let push = |name: &str, neg: bool, out: &mut Vec<String>| {
        if !name.starts_with("rpmlib(") || name.len() <= 7 {
            out.push(format!("{}{name}", if neg { '!' } else { ' ' }));
        }
    };
    match r {
        Rich::Dep(s) => push(&s.name, neg, out),
        Rich::And(v) | Rich::Or(v) | Rich::With(v) => v.iter().for_each(|c| collect(c, neg, out)),
        Rich::Without(a, b) => {
            collect(a, neg, out);
            collect(b, neg, out);
        }
        Rich::If(a, cond, otherwise) | Rich::Unless(a, cond, otherwise) => {
            collect(a, neg, out);
            let start = out.len();
            collect(cond, !neg, out);
            if let Some(e) = otherwise {
                let inverted: Vec<String> = out[start..]
                    .iter()
                    .map(|n| {
                        let (first, rest) = n.split_at(1);
                        format!("{}{rest}", if first == "!" { ' ' } else { '!' })
                    })
                    .collect();
                out.extend(inverted);
                collect(e, neg, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_requires_follow_rpm() {
        assert!(is_transient_require(SENSE_SCRIPT_PRE));
        assert!(is_transient_require(SENSE_RPMLIB | (1 << 3)));
        assert!(!is_transient_require(SENSE_SCRIPT_PRE | SENSE_SCRIPT_PREUN));
        assert!(!is_transient_require(0));
        assert!(!is_transient_require(SENSE_SCRIPT_POST | SENSE_META));
    }

    #[test]
    fn rich_names_negate_conditions_and_sort() {
        assert_eq!(rich_names("(a if b else c)"), ["a", "b", "c", "!b"]);
        assert_eq!(rich_names("(foo or (bar and rpmlib(X)))"), ["bar", "foo"]);
        assert_eq!(rich_names("(x unless y)"), ["x", "!y"]);
        assert_eq!(rich_names("(a or a)"), ["a"]);
    }
}
