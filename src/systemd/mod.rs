//! systemd pieces a package ships: unit files (parsed and checked), the
//! preset that enables them, the scriptlets systemd's own RPM macros would
//! give, and sysusers.d files for system accounts; and, for a root
//! filesystem being assembled without running anything, what
//! `systemd-sysusers` and `systemctl preset/enable/disable/mask` would do
//! to it.
//!
//! In: unit file text, user and group declarations, the text of account
//! files, the unit files and symlinks of a root. Out: file contents,
//! scriptlet text, new account file contents, symlinks to create and
//! remove. Never touches the filesystem and never runs a program.
//!
//! Code map:
//! - [`unit`](mod@unit): parse a unit file, check a unit name, check that a unit can
//!   be enabled;
//! - [`preset`]: write a package's preset file; decide what a set of
//!   preset files says for a unit;
//! - [`sysusers`]: write a package's sysusers.d file; parse one;
//! - [`scriptlets`]: the `%post`/`%preun`/`%postun`/`%pre` bodies systemd's
//!   RPM macros would give;
//! - [`accounts`]: apply sysusers.d files to `/etc/passwd`, `/etc/group`,
//!   `/etc/shadow`, `/etc/gshadow` as `systemd-sysusers --root` does;
//! - [`enable`]: the symlinks under `/etc/systemd/system` that `systemctl
//!   --root preset/enable/disable/mask` would create and remove.

pub mod accounts;
pub mod enable;
pub mod preset;
pub mod scriptlets;
pub mod sysusers;
pub mod unit;
