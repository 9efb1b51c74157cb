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
    Checksum, ChecksumKind, Dep, DepKind, FileKind, Package, PackageFile, SENSE_PREREQ, dep_evr,
    sense_flags,
};

/// What every table reader needs: names for errors, the limits, and the
/// count of entries per package so far.
struct Ctx<'a> {
    what: &'a str,
    limits: &'a Limits,
    entries: BTreeMap<i64, usize>,
}

impl Ctx<'_> {
    fn sql(&self, source: rusqlite::Error) -> RepoError {
        RepoError::Sqlite {
            what: self.what.to_string(),
            source,
        }
    }

    fn check_len(&self, s: &str) -> Result<()> {
        if s.len() > self.limits.max_string {
            return Err(RepoError::over(
                self.what,
                "max_string",
                self.limits.max_string as u64,
                "bytes in one value",
            ));
        }
        Ok(())
    }

    /// A text column (NULL is empty), within `max_string`.
    fn text(&self, r: &rusqlite::Row, i: usize) -> Result<String> {
        Ok(self.opt(r, i)?.unwrap_or_default())
    }

    fn opt(&self, r: &rusqlite::Row, i: usize) -> Result<Option<String>> {
        let s: Option<String> = r.get(i).map_err(|e| self.sql(e))?;
        if let Some(s) = &s {
            self.check_len(s)?;
        }
        Ok(s)
    }

    /// One more entry (dependency or file) for package `key`.
    fn count(&mut self, key: i64) -> Result<()> {
        let n = self.entries.entry(key).or_default();
        *n += 1;
        if *n > self.limits.max_entries {
            return Err(RepoError::over(
                self.what,
                "max_entries",
                self.limits.max_entries as u64,
                "entries in one package",
            ));
        }
        Ok(())
    }
}

/// Read every package of the primary database at `path`.
pub fn read_primary_db(path: &Path, what: &str, limits: &Limits) -> Result<Vec<Package>> {
    let mut cx = Ctx {
        what,
        limits,
        entries: BTreeMap::new(),
    };
    let db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| cx.sql(e))?;
    let mut by_key = packages_table(&db, &cx)?;
    for kind in DepKind::ALL {
        dep_table(&db, &mut cx, kind, &mut by_key)?;
    }
    files_table(&db, &mut cx, &mut by_key)?;
    Ok(by_key.into_values().collect())
}

/// The `packages` table, by `pkgKey`.
fn packages_table(db: &Connection, cx: &Ctx) -> Result<BTreeMap<i64, Package>> {
    let mut by_key = BTreeMap::new();
    let mut q = db
        .prepare(
            "SELECT pkgKey, pkgId, name, arch, version, epoch, release, time_build,
                    size_package, size_installed, location_href, location_base, checksum_type
             FROM packages ORDER BY pkgKey",
        )
        .map_err(|e| cx.sql(e))?;
    let mut rows = q.query([]).map_err(|e| cx.sql(e))?;
    while let Some(r) = rows.next().map_err(|e| cx.sql(e))? {
        let num = |i: usize| -> Result<u64> {
            let n: Option<i64> = r.get(i).map_err(|e| cx.sql(e))?;
            Ok(n.unwrap_or(0).max(0) as u64)
        };
        let key: i64 = r.get(0).map_err(|e| cx.sql(e))?;
        let name = cx.text(r, 2)?;
        let pw = format!(
            "{}: package `{}`",
            cx.what,
            crate::spec::diag::escape(&name)
        );
        let kind = ChecksumKind::parse(&cx.text(r, 12)?, &pw)?;
        let epoch = cx.text(r, 5)?;
        let p = Package {
            checksum: Checksum::new(kind, &cx.text(r, 1)?, &pw)?,
            name: name.into(),
            arch: cx.text(r, 3)?.into(),
            version: cx.text(r, 4)?.into(),
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
            release: cx.text(r, 6)?.into(),
            build_time: num(7)?,
            size: num(8)?,
            installed_size: num(9)?,
            location: cx.text(r, 10)?,
            location_base: Some(cx.text(r, 11)?).filter(|b| !b.is_empty()),
            ..Package::default()
        };
        if p.name.is_empty() || p.arch.is_empty() || p.version.is_empty() || p.location.is_empty() {
            return Err(RepoError::Metadata {
                what: pw,
                message: "a name, arch, version and location are needed".into(),
            });
        }
        by_key.insert(key, p);
        if by_key.len() as u64 > cx.limits.max_packages {
            return Err(RepoError::over(
                cx.what,
                "max_packages",
                cx.limits.max_packages,
                "packages",
            ));
        }
    }
    Ok(by_key)
}

/// One dependency table into the packages' lists, in row order.
fn dep_table(
    db: &Connection,
    cx: &mut Ctx,
    kind: DepKind,
    by_key: &mut BTreeMap<i64, Package>,
) -> Result<()> {
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
        .map_err(|e| cx.sql(e))?;
    let mut rows = q.query([]).map_err(|e| cx.sql(e))?;
    while let Some(r) = rows.next().map_err(|e| cx.sql(e))? {
        let key: i64 = r.get(0).map_err(|e| cx.sql(e))?;
        let name = cx.text(r, 1)?;
        let Some(p) = by_key.get_mut(&key) else {
            continue;
        };
        cx.count(key)?;
        let mut flags = match cx.opt(r, 2)?.as_deref() {
            None | Some("") => 0,
            Some(f) => sense_flags(f).ok_or_else(|| RepoError::Metadata {
                what: format!("{}: package `{}`", cx.what, p.name),
                message: format!("unknown comparison `{}`", crate::spec::diag::escape(f)),
            })?,
        };
        // createrepo writes `TRUE`/`FALSE`; other writers 1/0.
        let pre = match r.get_ref(6).map_err(|e| cx.sql(e))? {
            rusqlite::types::ValueRef::Text(t) => t.eq_ignore_ascii_case(b"true") || t == b"1",
            rusqlite::types::ValueRef::Integer(i) => i != 0,
            _ => false,
        };
        if pre {
            flags |= SENSE_PREREQ;
        }
        let dep = Dep {
            name: name.into(),
            flags,
            evr: dep_evr(
                cx.opt(r, 3)?.as_deref(),
                cx.opt(r, 4)?.as_deref(),
                cx.opt(r, 5)?.as_deref(),
            ),
        };
        p.deps_mut(kind).push(dep);
    }
    Ok(())
}

/// The `files` table into the packages' lists, in row order.
fn files_table(db: &Connection, cx: &mut Ctx, by_key: &mut BTreeMap<i64, Package>) -> Result<()> {
    let mut q = db
        .prepare("SELECT pkgKey, name, type FROM files ORDER BY pkgKey, rowid")
        .map_err(|e| cx.sql(e))?;
    let mut rows = q.query([]).map_err(|e| cx.sql(e))?;
    while let Some(r) = rows.next().map_err(|e| cx.sql(e))? {
        let key: i64 = r.get(0).map_err(|e| cx.sql(e))?;
        let path = cx.text(r, 1)?;
        let kind = match cx.opt(r, 2)?.as_deref() {
            Some("dir") => FileKind::Dir,
            Some("ghost") => FileKind::Ghost,
            _ => FileKind::File,
        };
        if let Some(p) = by_key.get_mut(&key) {
            cx.count(key)?;
            p.files.push(PackageFile { path, kind });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A primary_db as createrepo lays it out (the columns read here).
    fn db(path: &Path, packages: usize, name_len: usize) {
        let c = Connection::open(path).unwrap();
        let mut sql = String::from(
            "CREATE TABLE packages (pkgKey INTEGER PRIMARY KEY, pkgId TEXT, name TEXT, arch TEXT,
               version TEXT, epoch TEXT, release TEXT, time_build INTEGER, size_package INTEGER,
               size_installed INTEGER, location_href TEXT, location_base TEXT, checksum_type TEXT);
             CREATE TABLE files (name TEXT, type TEXT, pkgKey INTEGER);",
        );
        for k in DepKind::ALL {
            let pre = if k == DepKind::Requires {
                ", pre BOOLEAN DEFAULT FALSE"
            } else {
                ""
            };
            sql += &format!(
                "CREATE TABLE {} (name TEXT, flags TEXT, epoch TEXT, version TEXT, release TEXT, pkgKey INTEGER{pre});",
                k.name()
            );
        }
        c.execute_batch(&sql).unwrap();
        for i in 1..=packages {
            c.execute(
                "INSERT INTO packages VALUES (?1, ?2, ?3, 'noarch', '1.0', '0', '1', 5, 6, 7, ?4, NULL, 'sha256')",
                rusqlite::params![i as i64, format!("{i:064x}"), "n".repeat(name_len) + &i.to_string(), format!("p{i}.rpm")],
            )
            .unwrap();
            c.execute(
                "INSERT INTO requires VALUES ('/bin/sh', NULL, NULL, NULL, NULL, ?1, 'TRUE')",
                [i as i64],
            )
            .unwrap();
            c.execute(
                "INSERT INTO requires VALUES ('b', 'GE', '0', '2', NULL, ?1, 'FALSE')",
                [i as i64],
            )
            .unwrap();
            c.execute("INSERT INTO files VALUES ('/etc/x', 'dir', ?1)", [i as i64])
                .unwrap();
        }
    }

    #[test]
    fn reads_rows_in_order_under_the_limits() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("primary.sqlite");
        db(&p, 3, 1);
        let d = Limits::default();
        let pkgs = read_primary_db(&p, "db", &d).unwrap();
        assert_eq!(pkgs.len(), 3);
        assert_eq!(pkgs[1].nevra(), "n2-1.0-1.noarch");
        assert_eq!(
            (pkgs[1].build_time, pkgs[1].size, pkgs[1].installed_size),
            (5, 6, 7)
        );
        assert_eq!(pkgs[1].requires[0].flags, SENSE_PREREQ);
        assert_eq!(pkgs[1].requires[1].to_string(), "b >= 2");
        assert_eq!(pkgs[1].files[0].kind, FileKind::Dir);
        let limit = |l: Limits| read_primary_db(&p, "db", &l).unwrap_err().limit();
        assert_eq!(
            limit(Limits {
                max_packages: 2,
                ..d
            }),
            Some("max_packages")
        );
        assert_eq!(
            limit(Limits {
                max_entries: 2,
                ..d
            }),
            Some("max_entries")
        );
        let q = t.path().join("long.sqlite");
        db(&q, 1, 200);
        let e = read_primary_db(
            &q,
            "db",
            &Limits {
                max_string: 100,
                ..d
            },
        )
        .unwrap_err();
        assert_eq!(e.limit(), Some("max_string"));
        let e = read_primary_db(&t.path().join("none.sqlite"), "db", &d).unwrap_err();
        assert!(matches!(e, RepoError::Sqlite { .. }), "{e}");
    }
}
