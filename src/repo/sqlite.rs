//! The SQLite form of primary (`primary_db`, createrepo's `--database`),
//! read with `rusqlite` into the same [`Package`] records as the XML.
//!
//! In: the decompressed database file (SQLite needs a file to open), read
//! only. Out: every package in `pkgKey` order with its dependency lists in
//! row order (the order createrepo wrote them, the same as the XML's) and
//! the files primary lists. The same [`Limits`] hold: packages, entries per
//! package, bytes per string.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::decode::Limits;
use super::error::{RepoError, Result};
use super::package::{
    Checksum, ChecksumKind, Dep, DepKind, FileKind, Package, PackageFile, SENSE_PREREQ, sense_flags,
};

/// Read every package of the primary database at `path`.
pub fn read_primary_db(path: &Path, what: &str, limits: &Limits) -> Result<Vec<Package>> {
    let sql = |source| RepoError::Sqlite {
        what: what.to_string(),
        source,
    };
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    let long = |s: &str| -> Result<()> {
        if s.len() > limits.max_string {
            return Err(RepoError::Limit {
                what: what.to_string(),
                limit: "max_string",
                max: limits.max_string as u64,
                unit: "bytes in one value",
            });
        }
        Ok(())
    };
    let mut by_key: BTreeMap<i64, Package> = BTreeMap::new();
    let mut entries: BTreeMap<i64, usize> = BTreeMap::new();
    {
        let mut q = db
            .prepare(
                "SELECT pkgKey, pkgId, name, arch, version, epoch, release, time_build,
                        size_package, size_installed, location_href, location_base, checksum_type
                 FROM packages ORDER BY pkgKey",
            )
            .map_err(sql)?;
        let mut rows = q.query([]).map_err(sql)?;
        while let Some(r) = rows.next().map_err(sql)? {
            let text = |i: usize| -> Result<String> {
                let s: Option<String> = r.get(i).map_err(sql)?;
                let s = s.unwrap_or_default();
                long(&s)?;
                Ok(s)
            };
            let num = |i: usize| -> Result<u64> {
                let n: Option<i64> = r.get(i).map_err(sql)?;
                Ok(n.unwrap_or(0).max(0) as u64)
            };
            let key: i64 = r.get(0).map_err(sql)?;
            let name = text(2)?;
            let pw = format!("{what}: package `{}`", crate::spec::diag::escape(&name));
            let kind = ChecksumKind::parse(&text(12)?, &pw)?;
            let epoch = text(5)?;
            let p = Package {
                checksum: Checksum::new(kind, &text(1)?, &pw)?,
                name,
                arch: text(3)?,
                version: text(4)?,
                epoch: if epoch.is_empty() {
                    0
                } else {
                    epoch.parse().map_err(|_| RepoError::Metadata {
                        what: pw.clone(),
                        message: format!(
                            "`epoch` is not a number: `{}`",
                            crate::spec::diag::escape(&epoch)
                        ),
                    })?
                },
                release: text(6)?,
                build_time: num(7)?,
                size: num(8)?,
                installed_size: num(9)?,
                location: text(10)?,
                location_base: Some(text(11)?).filter(|b| !b.is_empty()),
                ..Package::default()
            };
            if p.name.is_empty()
                || p.arch.is_empty()
                || p.version.is_empty()
                || p.location.is_empty()
            {
                return Err(RepoError::Metadata {
                    what: pw,
                    message: "a name, arch, version and location are needed".into(),
                });
            }
            by_key.insert(key, p);
            if by_key.len() as u64 > limits.max_packages {
                return Err(RepoError::Limit {
                    what: what.to_string(),
                    limit: "max_packages",
                    max: limits.max_packages,
                    unit: "packages",
                });
            }
        }
    }
    let mut count = |key: i64| -> Result<()> {
        let n = entries.entry(key).or_default();
        *n += 1;
        if *n > limits.max_entries {
            return Err(RepoError::Limit {
                what: what.to_string(),
                limit: "max_entries",
                max: limits.max_entries as u64,
                unit: "entries in one package",
            });
        }
        Ok(())
    };
    for kind in DepKind::ALL {
        let pre = if kind == DepKind::Requires {
            "pre"
        } else {
            "'FALSE'"
        };
        let mut q = db
            .prepare(&format!(
                "SELECT pkgKey, name, flags, epoch, version, release, {pre} FROM {} ORDER BY pkgKey, rowid",
                kind.name()
            ))
            .map_err(sql)?;
        let mut rows = q.query([]).map_err(sql)?;
        while let Some(r) = rows.next().map_err(sql)? {
            let key: i64 = r.get(0).map_err(sql)?;
            let opt = |i: usize| -> Result<Option<String>> {
                let s: Option<String> = r.get(i).map_err(sql)?;
                if let Some(s) = &s {
                    long(s)?;
                }
                Ok(s)
            };
            let name = opt(1)?.unwrap_or_default();
            let Some(p) = by_key.get_mut(&key) else {
                continue;
            };
            count(key)?;
            let mut flags = match opt(2)?.as_deref() {
                None | Some("") => 0,
                Some(f) => sense_flags(f).ok_or_else(|| RepoError::Metadata {
                    what: format!("{what}: package `{}`", p.name),
                    message: format!("unknown comparison `{}`", crate::spec::diag::escape(f)),
                })?,
            };
            // createrepo writes `TRUE`/`FALSE`; other writers 1/0.
            let pre = match r.get_ref(6).map_err(sql)? {
                rusqlite::types::ValueRef::Text(t) => t.eq_ignore_ascii_case(b"true") || t == b"1",
                rusqlite::types::ValueRef::Integer(i) => i != 0,
                _ => false,
            };
            if pre {
                flags |= SENSE_PREREQ;
            }
            p.deps_mut(kind).push(Dep {
                name,
                flags,
                epoch: opt(3)?,
                version: opt(4)?,
                release: opt(5)?,
                pre,
            });
        }
    }
    let mut q = db
        .prepare("SELECT pkgKey, name, type FROM files ORDER BY pkgKey, rowid")
        .map_err(sql)?;
    let mut rows = q.query([]).map_err(sql)?;
    while let Some(r) = rows.next().map_err(sql)? {
        let key: i64 = r.get(0).map_err(sql)?;
        let path: String = r
            .get::<_, Option<String>>(1)
            .map_err(sql)?
            .unwrap_or_default();
        long(&path)?;
        let kind = match r.get::<_, Option<String>>(2).map_err(sql)?.as_deref() {
            Some("dir") => FileKind::Dir,
            Some("ghost") => FileKind::Ghost,
            _ => FileKind::File,
        };
        if let Some(p) = by_key.get_mut(&key) {
            count(key)?;
            p.files.push(PackageFile { path, kind });
        }
    }
    Ok(by_key.into_values().collect())
}
