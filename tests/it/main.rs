//! Integration tests: one binary, one module per behaviour area. Tests that
//! need an external judge (rpm, rpmlint, rpmbuild, gpg, gcc) skip with a
//! message when it is missing, except under `CI=true`, where they fail.

mod bake;
mod boot;
mod boottest;
mod build_cli;
mod build_errors;
mod build_judged;
mod common;
mod compare_rpmbuild;
mod disk;
mod ext4;
mod image;
mod inspect_diff;
mod install;
mod interrupt;
mod jobs;
mod outputs;
mod reproducible;
mod rootfs;
mod rpmdb;
mod signing;
mod sparse_tar;
mod verify;
