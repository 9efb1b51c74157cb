//! The SQLite backend, with the schema `rpmdb --initdb` creates.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use super::index::{self, Key, TABLES};
use crate::rpm::header::Header;

#[derive(Debug, thiserror::Error)]
pub enum RpmdbError {
    #[error("rpm database `{path}`: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("rpm database `{path}`: record {hnum} is not a valid header: {message}")]
    BadRecord {
        path: PathBuf,
        hnum: u32,
        message: String,
    },
}

/// Tables whose key rpm also indexes by hnum (see `rpmdb --initdb`): every
/// table has a key index; these also have an hnum index.
const HNUM_INDEXED: &[&str] = &[
    "Basenames",
    "Requirename",
    "Providename",
    "Conflictname",
    "Obsoletename",
    "Triggername",
    "Dirnames",
    "Filetriggername",
    "Transfiletriggername",
    "Recommendname",
    "Suggestname",
    "Supplementname",
    "Enhancename",
];
/// Tables with no index at all.
const UNINDEXED: &[&str] = &["Installtid", "Sigmd5"];

pub struct Rpmdb {
    conn: Connection,
    path: PathBuf,
}

impl Rpmdb {
    fn err(&self, source: rusqlite::Error) -> RpmdbError {
        RpmdbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Open an existing database for reading and writing.
    pub fn open(path: &Path) -> Result<Rpmdb, RpmdbError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(
            |source| RpmdbError::Sqlite {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Ok(Rpmdb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open a database only to read it; nothing is written beside it (no
    /// `-wal`/`-shm` files), whatever its journal mode says.
    pub fn open_read_only(path: &Path) -> Result<Rpmdb, RpmdbError> {
        let conn = Connection::open_with_flags(
            format!("file:{}?immutable=1", path.display()),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|source| RpmdbError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Rpmdb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Create a new, empty database with rpm's schema.
    pub fn create(path: &Path) -> Result<Rpmdb, RpmdbError> {
        let conn = Connection::open(path).map_err(|source| RpmdbError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        let db = Rpmdb {
            conn,
            path: path.to_path_buf(),
        };
        db.conn
            .execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
            .map_err(|e| db.err(e))?;
        let mut sql = String::from(
            "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);\n",
        );
        for (table, _) in TABLES {
            let ty = if UNINDEXED.contains(table) {
                "BLOB"
            } else {
                "TEXT"
            };
            sql.push_str(&format!(
                "CREATE TABLE '{table}' (key '{ty}' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));\n"
            ));
            if !UNINDEXED.contains(table) {
                sql.push_str(&format!(
                    "CREATE INDEX '{table}_key_idx' ON '{table}'(key ASC);\n"
                ));
            }
            if HNUM_INDEXED.contains(table) {
                sql.push_str(&format!(
                    "CREATE INDEX '{table}_hnum_idx' ON '{table}'(hnum ASC);\n"
                ));
            }
        }
        db.conn
            .execute_batch(&format!("BEGIN;\n{sql}COMMIT;"))
            .map_err(|e| db.err(e))?;
        Ok(db)
    }

    /// Every package record, by hnum.
    pub fn packages(&self) -> Result<Vec<(u32, Header)>, RpmdbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (hnum, blob) = row.map_err(|e| self.err(e))?;
            let h = Header::from_blob(blob).map_err(|e| RpmdbError::BadRecord {
                path: self.path.clone(),
                hnum,
                message: e.0,
            })?;
            out.push((hnum, h));
        }
        Ok(out)
    }

    /// Every row of one index table, in rowid order: (key, hnum, idx).
    pub fn index_rows(&self, table: &str) -> Result<Vec<(Key, u32, u32)>, RpmdbError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT key, hnum, idx FROM '{table}' ORDER BY rowid"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                let key = match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Text(t) => {
                        Key::Text(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => Key::Blob(b.to_vec()),
                    other => Key::Text(format!("{other:?}")),
                };
                Ok((key, r.get::<_, u32>(1)?, r.get::<_, u32>(2)?))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Add a package record and its index rows; returns its hnum.
    pub fn add(&mut self, record: &[u8]) -> Result<u32, RpmdbError> {
        let h = Header::from_blob(record.to_vec()).map_err(|e| RpmdbError::BadRecord {
            path: self.path.clone(),
            hnum: 0,
            message: e.0,
        })?;
        let path = self.path.clone();
        let err = |source| RpmdbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute("INSERT INTO Packages (blob) VALUES (?1)", params![record])
            .map_err(err)?;
        let hnum = u32::try_from(tx.last_insert_rowid()).unwrap_or(u32::MAX);
        for row in index::rows(&h) {
            let sql = format!(
                "INSERT INTO '{}' (key, hnum, idx) VALUES (?1, ?2, ?3)",
                row.table
            );
            match &row.key {
                Key::Text(t) => tx.execute(&sql, params![t, hnum, row.idx]),
                Key::Blob(b) => tx.execute(&sql, params![b, hnum, row.idx]),
            }
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(hnum)
    }

    /// Remove a package record and its index rows.
    pub fn remove(&mut self, hnum: u32) -> Result<(), RpmdbError> {
        let path = self.path.clone();
        let err = |source| RpmdbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        for (table, _) in TABLES {
            tx.execute(
                &format!("DELETE FROM '{table}' WHERE hnum = ?1"),
                params![hnum],
            )
            .map_err(err)?;
        }
        tx.execute("DELETE FROM Packages WHERE hnum = ?1", params![hnum])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(())
    }

    /// Checkpoint and close: the file alone holds everything afterwards.
    /// It is left in rollback-journal mode, not WAL: a WAL database cannot
    /// be opened on a read-only mount without its `-shm` file, and that is
    /// how scanners and auditors read an image. rpm switches it back to WAL
    /// itself the first time it opens it read-write on the running server.
    pub fn close(self) -> Result<(), RpmdbError> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
            .map_err(|e| self.err(e))?;
        let path = self.path.clone();
        self.conn
            .close()
            .map_err(|(_, source)| RpmdbError::Sqlite {
                path: path.clone(),
                source,
            })?;
        for suffix in ["-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }
}
