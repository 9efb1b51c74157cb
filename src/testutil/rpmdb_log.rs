//! Test data: an rpm database whose last change is still only in its
//! write-ahead log, as a snapshot of a running system may hold it.
//!
//! Compiled into the unit tests (`src/testutil.rs`) and the integration
//! tests (`tests/it/common.rs`, by `#[path]`); each uses a part of it.
#![allow(dead_code)]

use std::path::Path;

use rusqlite::Connection;

/// The index tables of an rpm database: every table but `Packages` and
/// SQLite's own.
pub fn index_tables(conn: &Connection) -> Vec<String> {
    conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT IN ('Packages', 'sqlite_sequence', 'sqlite_stat1')",
    )
    .unwrap()
    .query_map([], |r| r.get(0))
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Erase package `name`'s record and index rows from the database `db`
/// with the change kept in its write-ahead log (`db` + `-wal`, not
/// empty), not checkpointed. The connection is returned: the log stays
/// as it is until it closes, so the files are to be copied before.
pub fn erase_into_log(db: &Path, name: &str) -> Connection {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
        .unwrap();
    let hnum: i64 = conn
        .query_row("SELECT hnum FROM Name WHERE key = ?1", [name], |r| r.get(0))
        .unwrap();
    for table in index_tables(&conn)
        .iter()
        .map(String::as_str)
        .chain(["Packages"])
    {
        conn.execute(&format!("DELETE FROM \"{table}\" WHERE hnum = ?1"), [hnum])
            .unwrap();
    }
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the erase is not in the log"
    );
    conn
}
