//! Package and image specs: the typed model, parsing with located errors,
//! and validation.
//!
//! In: a spec file's path. Out: a validated model whose paths are absolute
//! and whose every value has been checked, or a [`SpecError`] naming file,
//! line and column. Relative paths in a spec are relative to the spec's own
//! folder. Unknown keys are errors with a "did you mean". This module reads
//! the spec and checks that the files it names exist; it never writes.
//!
//! [`dep`] is the grammar of dependency strings, which specs write and RPM
//! headers carry: it lives here, below `rpm`, `rpmdb` and `install`, which
//! read it.

pub mod dep;
pub mod diag;
pub mod image;
pub mod package;
pub mod repos;

pub use diag::SpecError;
pub use package::{PackageSpec, load_package};
