//! Installing packages into a root filesystem tree, as `rpm -i --root`
//! would, without rpm, root or chroot (bake, part 1).
//!
//! Code map: `cpio.rs` (payload archive), `caps.rs` (file capabilities),
//! `deps.rs` (dependency closure).

pub mod caps;
pub mod cpio;
pub mod deps;
