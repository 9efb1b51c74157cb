//! systemd pieces a package ships: unit files (parsed and checked), the
//! preset that enables them, the scriptlets systemd's own RPM macros would
//! give, and sysusers.d files for system accounts.
//!
//! In: unit file text, user and group declarations. Out: file contents and
//! scriptlet text. Never touches the filesystem.

pub mod preset;
pub mod scriptlets;
pub mod sysusers;
pub mod unit;
