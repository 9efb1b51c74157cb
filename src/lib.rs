//! ingot turns an application into an immutable server image.
//!
//! The pipeline, one module per artifact it produces:
//!
//! 1. [`spec`] reads a package spec (TOML) into a typed, validated model;
//!    every error names file, line and column.
//! 2. [`rpm`] turns that model into a v4 `.rpm` (on the `rpm` crate), adding
//!    the dependencies the payload needs ([`rpm::autodeps`]) and the systemd
//!    pieces the spec asks for ([`systemd`]).
//! 3. [`output`] writes every artifact under a temporary name and renames it
//!    at the end, so a failure never leaves a partial file.
//!
//! Time enters through [`source_date`] only; nothing reads the clock.
//! The command line lives in `cli` (binary side) and only draws what the
//! library reports.

pub mod arch;
pub mod bake;
pub mod boottest;
pub mod diff;
pub mod disk;
pub mod ext4;
pub mod filesystem;
pub mod fsread;
pub mod fswrite;
pub mod input;
pub mod inspect;
pub mod install;
pub mod lock;
pub mod manifest;
pub mod output;
pub mod package;
pub mod progress;
pub mod repo;
pub mod resolve;
pub mod rootfs;
pub mod rpm;
pub mod rpmdb;
pub mod source_date;
pub mod sparse;
pub mod spec;
pub mod systemd;
#[cfg(test)]
pub(crate) mod testutil;
pub mod xfs;
