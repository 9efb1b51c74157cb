//! Integration tests: one binary, one module per behaviour area. A test
//! that cannot run here (an external judge such as rpm, rpmlint, rpmbuild,
//! gpg or gcc missing, `../shared/fixtures` absent, not root, no loop
//! mount) skips with a `SKIPPED:` line, except under `CI=true` or `CI=1`,
//! where it fails: `common`'s rule, shared with the unit tests.

mod arch;
mod bake;
mod bake_jobs;
mod base_bios;
mod base_image;
pub(crate) mod boot;
mod boottest;
mod boottest_input;
mod build_cli;
mod build_errors;
mod build_hardlinks;
mod build_judged;
mod cloud_formats;
mod common;
mod compare_rpmbuild;
mod compression;
mod disk;
mod ebs;
mod ext4;
mod fuzz_found;
mod image;
mod image_errors;
mod inspect_diff;
mod install;
mod interrupt;
mod jobs;
mod outputs;
mod progress;
mod readers;
mod real_rpms;
mod repo;
mod repo_bake;
mod repo_server;
mod reproducible;
mod resolve_dnf;
mod rootfs;
mod rpmdb;
mod rpmdb_readonly;
mod signing;
mod source_date_future;
mod sparse_tar;
mod spec_hostile;
mod verify;
mod xfs;
mod xfs_read;
