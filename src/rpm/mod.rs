//! Package spec -> `.rpm`, and the dependency vocabulary rpm uses.
//!
//! In: a validated [`crate::spec::PackageSpec`] and build options
//! (compression, signing key, source date). Out: the bytes of a v4 package
//! with SHA-256 file digests, that real `rpm -K`, `rpmlint` and `rpm -i`
//! accept. [`plan`] expands the spec into one entry per path, [`build`]
//! decides every tag in a list of steps (files, dependencies, scriptlets,
//! package tags, signature) and [`writer`] lays the bytes out; the `rpm`
//! crate lends its dependency vocabulary and its OpenPGP signer. ingot adds
//! what rpmbuild's macros and file classifiers would add (owned
//! directories, automatic dependencies, systemd and sysusers pieces). It
//! never runs rpmbuild or rpm, and never changes the bytes of the user's
//! files (no stripping, no build-id links).

pub mod autodeps;
pub mod build;
pub mod compression;
pub mod dep;
pub mod filedigest;
pub mod header;
pub mod payload;
pub mod plan;
pub mod read;
pub mod writer;

pub use build::{
    BuildOptions, BuiltPackage, Target, WrittenPackage, build_package, default_jobs, write_package,
};
pub use compression::Compression;
