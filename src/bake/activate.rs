//! Stage 4 of `bake`: activate what the packages declare, without running
//! a scriptlet: accounts from sysusers.d, owners resolved through them, the
//! image spec's `[[image.files]]` placed (after the accounts, which they
//! may name, and before units are enabled, since they may add unit files),
//! then units enabled from presets and the spec's `[image.systemd]` lists.
//!
//! In: the tree, the install report, the spec. Out: [`Activated`]: the
//! warnings, what was not run and the systemd summary for the manifest.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Reporter;
use crate::error::{Error, Result};
use crate::install::{self, InstallReport};
use crate::rootfs::{Meta, Node, Tree};
use crate::spec::image::{ImageSpec, OverlayContent};
use crate::spec::package::Loc;

/// What activation did, for the manifest.
pub(super) struct Activated {
    pub warnings: Vec<String>,
    pub systemd: install::activate::Activation,
}

pub(super) fn activate(
    tree: &mut Tree,
    spec: &ImageSpec,
    report: &InstallReport,
    time: u32,
    progress: &dyn Reporter,
) -> Result<Activated> {
    progress.step("creating accounts and enabling units");
    let mut warnings = install::activate::accounts(tree, time)?;
    warnings.extend(install::resolve_owners(tree, &report.pending_owners));
    progress.step("placing files");
    for o in &spec.files {
        place_overlay(tree, spec, o, time)?;
    }
    let systemd =
        install::activate::systemd(tree, report, &spec.systemd, time).map_err(|e| match &e {
            install::InstallError::Override { verb, unit, .. } => {
                match spec.systemd.find(verb, unit) {
                    Some(at) => Error::Spec(spec.error_at(at, e.to_string())),
                    None => Error::Install(e),
                }
            }
            _ => Error::Install(e),
        })?;
    warnings.extend(systemd.warnings.iter().cloned());
    Ok(Activated { warnings, systemd })
}

fn place_overlay(
    tree: &mut Tree,
    spec: &ImageSpec,
    o: &crate::spec::image::Overlay,
    time: u32,
) -> Result<()> {
    let users = read_ids(tree, "/etc/passwd");
    let groups = read_ids(tree, "/etc/group");
    let at = |loc: Loc, m: String| Error::Spec(spec.error_at(loc, m));
    let uid = lookup(&users, &o.user)
        .ok_or_else(|| at(o.at_user, not_in_image("user", &o.user, &o.dest)))?;
    let gid = lookup(&groups, &o.group)
        .ok_or_else(|| at(o.at_group, not_in_image("group", &o.group, &o.dest)))?;
    // Only files are placed: a folder (or a link to one) stays as it is.
    if tree
        .resolve(&o.dest, true)
        .is_ok_and(|id| tree.node(id).is_dir())
    {
        return Err(at(
            o.at,
            format!(
                "`{}` is a folder in the image; [[image.files]] places files",
                o.dest
            ),
        ));
    }
    let data = match &o.content {
        OverlayContent::Text(t) => tree.spill(&mut t.as_bytes()),
        OverlayContent::File(p) => {
            let mut f = std::fs::File::open(p).map_err(|source| Error::Read {
                path: p.clone(),
                source,
            })?;
            tree.spill(&mut f)
        }
    }
    .map_err(|source| Error::Write {
        path: PathBuf::from(&o.dest),
        source,
    })?;
    let parent = Path::new(&o.dest)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    tree.mkdir_p(&parent, &Meta::new(0o755, 0, 0, i64::from(time)))
        .map_err(|e| at(o.at, format!("cannot place `{}`: {e}", o.dest)))?;
    tree.insert_path(
        &o.dest,
        Node::file(
            Meta::new(u32::from(o.mode), uid, gid, i64::from(time)),
            data,
        ),
    )
    .map_err(|e| at(o.at, format!("cannot place `{}`: {e}", o.dest)))?;
    Ok(())
}

fn not_in_image(what: &str, name: &str, dest: &str) -> String {
    format!("{what} `{name}` for `{dest}` does not exist in the image")
}

fn read_ids(tree: &Tree, path: &str) -> Vec<(String, u32)> {
    let Ok(id) = tree.resolve(path, true) else {
        return Vec::new();
    };
    let mut s = String::new();
    if tree
        .open(id)
        .and_then(|mut r| r.read_to_string(&mut s))
        .is_err()
    {
        return Vec::new();
    }
    s.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let n = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((n.to_string(), id))
        })
        .collect()
}

fn lookup(ids: &[(String, u32)], name: &str) -> Option<u32> {
    if name == "root" {
        return Some(0);
    }
    ids.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
}
