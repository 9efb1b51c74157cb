//! The installed-package database (`/var/lib/rpm/rpmdb.sqlite`) that real
//! rpm inside the finished server reads.
//!
//! In: a database file (or none) and the headers of packages to add or
//! remove. Out: the same database rpm 4.18 would leave: each package's
//! record is its immutable region plus the install-time tags
//! ([`record`]), and every index row `tag2index()` writes ([`index`]).
//! Written here because no crate writes rpm databases; SQLite itself comes
//! from `rusqlite`. Never runs rpm; never leaves `-wal`/`-shm` files.

pub mod index;
pub mod record;
pub mod sqlite;

pub use sqlite::Rpmdb;
