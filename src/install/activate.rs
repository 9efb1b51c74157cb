//! What scriptlets would have done on a live system, done declaratively:
//! system accounts from sysusers.d (as `systemd-sysusers --root` would),
//! then unit enablement from presets and the image spec's lists (as
//! `systemctl --root preset/enable/disable/mask` would).
//!
//! In: the tree after packages are placed, what was installed, the image
//! spec's systemd overrides, the source date. Out: the account files and
//! the symlinks under `/etc/systemd/system` changed in the tree, a summary
//! for the manifest, and the scriptlets that were not replaced by this
//! (listed, and warned about). Never runs a program.

use std::collections::{BTreeMap, BTreeSet};

use crate::package::NotRun;
use crate::rootfs::{Dir, Kind, Meta, Node, PutError, Tree};
use crate::spec::image::SystemdOverrides;
use crate::systemd::{accounts, enable, preset, scriptlets, unit};

use super::{InstallError, InstallReport, Installed};

pub struct Activation {
    /// Units enabled (by presets and the spec), disabled and masked.
    pub enabled: Vec<String>,
    pub disabled: Vec<String>,
    pub masked: Vec<String>,
    pub not_run: Vec<NotRun>,
    pub warnings: Vec<String>,
}

fn refused(message: impl Into<String>) -> InstallError {
    InstallError::Refused {
        message: message.into(),
    }
}

/// Names and texts of the regular files (and /dev/null symlinks) in a
/// directory of the tree.
fn list_dir(tree: &Tree, dir: &str) -> Vec<(String, Option<String>)> {
    let Ok(id) = tree.resolve(dir, true) else {
        return Vec::new();
    };
    let Some(d) = tree.node(id).as_dir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in d.entries().keys() {
        let name = String::from_utf8_lossy(name).into_owned();
        let path = format!("{dir}/{name}");
        let Ok(node) = tree.resolve(&path, false) else {
            continue;
        };
        match &tree.node(node).kind {
            Kind::Symlink(t) if t == b"/dev/null" => out.push((name, None)),
            _ => {
                if let Some(text) = tree.read_text(&path) {
                    out.push((name, Some(text)));
                }
            }
        }
    }
    out
}

fn write_file(
    tree: &mut Tree,
    path: &str,
    text: &str,
    mode: u32,
    time: u32,
) -> Result<(), InstallError> {
    tree.put_text(path, text, mode, time).map_err(|e| match e {
        PutError::Spill(source) => InstallError::Work {
            path: path.into(),
            source,
        },
        PutError::Path(source) => InstallError::Place {
            package: "accounts".into(),
            path: path.into(),
            source,
        },
    })
}

/// Create system accounts from every sysusers.d file in the tree.
pub fn accounts(tree: &mut Tree, time: u32) -> Result<Vec<String>, InstallError> {
    let mut found = Vec::new();
    for dir in accounts::SYSUSERS_DIRS {
        for (name, text) in list_dir(tree, dir) {
            found.push((dir.to_string(), name, text));
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let config =
        accounts::order_config_files(found).map_err(|e| refused(format!("sysusers.d: {e}")))?;
    let files = accounts::AccountFiles {
        passwd: tree.read_text("/etc/passwd"),
        group: tree.read_text("/etc/group"),
        shadow: tree.read_text("/etc/shadow"),
        gshadow: tree.read_text("/etc/gshadow"),
    };
    let mut req = accounts::Request::new(files, config, accounts::day_from_epoch(u64::from(time)));
    let os = tree.read_text("/etc/os-release").unwrap_or_default();
    if os
        .lines()
        .any(|l| l.trim() == "ID=debian" || l.trim() == "ID=\"debian\"")
    {
        req.build = accounts::SysusersBuild::DEBIAN_12;
    }
    req.login_defs = tree.read_text("/etc/login.defs");
    req.bin_bash_exists = tree.resolve("/bin/bash", true).is_ok();
    let out = accounts::apply(&req).map_err(|e| refused(format!("creating accounts: {e}")))?;
    for f in &out.written {
        if let Some(old) = out.backups.get(*f) {
            write_file(
                tree,
                &f.backup_path(),
                old,
                accounts::new_file_mode(*f),
                time,
            )?;
        }
        if let Some(new) = out.files.get(*f) {
            write_file(tree, f.path(), new, accounts::new_file_mode(*f), time)?;
        }
    }
    Ok(out.warnings)
}

/// Units a package ships under /usr/lib/systemd/system (not links, not
/// drop-ins).
fn units_in(files: &[String]) -> Vec<String> {
    files
        .iter()
        .filter_map(|f| f.strip_prefix("/usr/lib/systemd/system/"))
        .filter(|n| !n.contains('/') && unit::check_unit_name(n).is_ok())
        .map(str::to_string)
        .collect()
}

/// Enable units, check them, and sort out which scriptlets were replaced.
pub fn systemd(
    tree: &mut Tree,
    report: &InstallReport,
    overrides: &SystemdOverrides,
    time: u32,
) -> Result<Activation, InstallError> {
    let found = read_units(tree);
    let mut warnings = found.warnings;
    let rules = preset_rules(tree);
    let shipped = shipped_units(report);
    let ops = operations(&shipped, overrides);
    let out = enable::apply(&found.units, &rules, &ops).map_err(|e| match e.verb {
        enable::Verb::Preset => refused(format!("systemd: {e}")),
        verb => InstallError::Override {
            verb: verb.as_str(),
            unit: e.units.first().cloned().unwrap_or_default(),
            message: e.message,
        },
    })?;
    warnings.extend(out.warnings.iter().cloned());
    apply_links(tree, &out, time)?;
    let linked = Linked::from_links(&out.links);
    check_programs(tree, &found.parsed, &shipped, overrides, &linked.enabled)?;
    let not_run = scriptlets_not_run(tree, report, &mut warnings);
    Ok(Activation {
        enabled: linked.enabled.into_iter().collect(),
        disabled: overrides.disable.iter().map(|u| u.name.clone()).collect(),
        masked: linked.masked.into_iter().collect(),
        not_run,
        warnings,
    })
}

/// The unit files and links of the tree, as [`read_units`] finds them.
struct FoundUnits {
    units: enable::UnitTree,
    /// Unit files (not drop-ins) that parse, by path.
    parsed: BTreeMap<String, unit::UnitFile>,
    /// Unit files that do not parse, left as they are.
    warnings: Vec<String>,
}

/// Every unit file, link and `.wants`/`.requires`/drop-in folder in the
/// unit search path.
fn read_units(tree: &Tree) -> FoundUnits {
    let mut found = FoundUnits {
        units: enable::UnitTree::new(),
        parsed: BTreeMap::new(),
        warnings: Vec::new(),
    };
    for dir in enable::SEARCH_PATH {
        let Ok(id) = tree.resolve(dir, true) else {
            continue;
        };
        let Some(d) = tree.node(id).as_dir() else {
            continue;
        };
        let names: Vec<String> = d
            .entries()
            .keys()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        for name in names {
            let path = format!("{dir}/{name}");
            let Ok(node) = tree.resolve(&path, false) else {
                continue;
            };
            match &tree.node(node).kind {
                Kind::Symlink(t) => found.units.add_symlink(&path, &String::from_utf8_lossy(t)),
                Kind::Dir(sub) => read_unit_subdir(tree, &mut found.units, &path, sub),
                Kind::File(f) if f.size == 0 => found.units.add_empty_file(&path),
                Kind::File(_) => match tree.read_text(&path).map(|t| unit::parse(&t)) {
                    Some(Ok(u)) => {
                        found.parsed.insert(path.clone(), u.clone());
                        found.units.add_file(&path, u);
                    }
                    Some(Err(e)) => found.warnings.push(format!(
                        "unit file {path} does not parse ({e}); left as it is"
                    )),
                    None => {}
                },
                _ => {}
            }
        }
    }
    found
}

/// The links and drop-ins in folder `sub` at `path` of the search path
/// (`foo.service.wants/`, `foo.service.d/`).
fn read_unit_subdir(tree: &Tree, units: &mut enable::UnitTree, path: &str, sub: &Dir) {
    let entries: Vec<(String, Option<String>)> = sub
        .entries()
        .keys()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .map(|n| {
            let p = format!("{path}/{n}");
            let link = tree
                .resolve(&p, false)
                .ok()
                .and_then(|x| match &tree.node(x).kind {
                    Kind::Symlink(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    _ => None,
                });
            (n, link)
        })
        .collect();
    for (n, link) in entries {
        let p = format!("{path}/{n}");
        match link {
            Some(t) => units.add_symlink(&p, &t),
            None => {
                if let Some(text) = tree.read_text(&p)
                    && let Ok(u) = unit::parse(&text)
                {
                    units.add_file(&p, u);
                }
            }
        }
    }
}

/// The preset files of the tree, read as systemd 252 reads them.
fn preset_rules(tree: &Tree) -> preset::PresetRules {
    let mut preset_files: Vec<(String, String)> = Vec::new();
    for dir in [
        "/usr/lib/systemd/system-preset",
        "/usr/local/lib/systemd/system-preset",
        "/etc/systemd/system-preset",
    ] {
        for (name, text) in list_dir(tree, dir) {
            if name.ends_with(".preset") {
                preset_files.push((name, text.unwrap_or_default()));
            }
        }
    }
    preset::PresetRules::for_systemd_version(preset_files, 252)
}

/// Units the new packages ship, sorted, each once.
fn shipped_units(report: &InstallReport) -> Vec<String> {
    let mut shipped: Vec<String> = Vec::new();
    for p in &report.installed {
        shipped.extend(units_in(&p.files));
    }
    shipped.sort();
    shipped.dedup();
    shipped
}

/// What to do, in order: preset the `shipped` units, as %systemd_post
/// would, then the image's own units one by one, so that a failure names
/// the entry of the spec that caused it.
fn operations(shipped: &[String], overrides: &SystemdOverrides) -> Vec<enable::Operation> {
    let mut ops = Vec::new();
    if !shipped.is_empty() {
        ops.push(enable::Operation::preset(shipped.to_vec()));
    }
    for u in &overrides.enable {
        ops.push(enable::Operation::enable([u.name.clone()]));
    }
    for u in &overrides.disable {
        ops.push(enable::Operation::disable([u.name.clone()]));
    }
    for u in &overrides.mask {
        ops.push(enable::Operation::mask([u.name.clone()]));
    }
    ops
}

/// Make the tree's links what `out` says: links removed (and the folders
/// that leaves empty), links created.
fn apply_links(tree: &mut Tree, out: &enable::Outcome, time: u32) -> Result<(), InstallError> {
    let dir_meta = Meta::new(0o755, 0, 0, i64::from(time));
    for path in &out.removed {
        let _ = tree.remove(path);
    }
    for d in out.emptied_dirs.iter().rev() {
        if tree
            .resolve(d, false)
            .ok()
            .and_then(|id| tree.node(id).as_dir().map(|x| x.is_empty()))
            == Some(true)
        {
            let _ = tree.remove(d);
        }
    }
    let place_err = |path: &String| {
        let path = path.clone();
        move |source| InstallError::Place {
            package: "systemd".into(),
            path,
            source,
        }
    };
    for (path, target) in &out.created {
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("/");
        tree.mkdir_p(parent, &dir_meta).map_err(place_err(path))?;
        let _ = tree.remove(path);
        tree.insert_path(
            path,
            Node::symlink(
                Meta::new(0o777, 0, 0, i64::from(time)),
                target.as_bytes().to_vec(),
            ),
        )
        .map_err(place_err(path))?;
    }
    Ok(())
}

/// What ends up enabled and masked: units some link points at.
struct Linked {
    /// Units a `.wants/` or `.requires/` link names.
    enabled: BTreeSet<String>,
    /// Units linked to `/dev/null`.
    masked: BTreeSet<String>,
}

impl Linked {
    /// From every link in the unit folders, path to target.
    fn from_links(links: &BTreeMap<String, String>) -> Linked {
        let mut enabled: BTreeSet<String> = BTreeSet::new();
        let mut masked: BTreeSet<String> = BTreeSet::new();
        for (path, target) in links {
            let name = path.rsplit('/').next().unwrap_or("").to_string();
            if target == "/dev/null" {
                masked.insert(name);
            } else if path.contains(".wants/") || path.contains(".requires/") {
                enabled.insert(name);
            }
        }
        Linked { enabled, masked }
    }
}

/// Refuse an enabled unit whose program is missing: it would fail at
/// boot. Blamed on the spec's `enable` entry when only the spec asked for
/// the unit, else on the package.
fn check_programs(
    tree: &Tree,
    parsed: &BTreeMap<String, unit::UnitFile>,
    shipped: &[String],
    overrides: &SystemdOverrides,
    enabled: &BTreeSet<String>,
) -> Result<(), InstallError> {
    let asked: Vec<String> = overrides.enable.iter().map(|u| u.name.clone()).collect();
    for name in shipped.iter().chain(&asked) {
        if !enabled.contains(name) {
            continue;
        }
        let template = unit::template_name(name).unwrap_or_else(|| name.clone());
        let file = enable::SEARCH_PATH
            .iter()
            .map(|d| format!("{d}/{template}"))
            .find(|p| parsed.contains_key(p));
        let Some(f) = file else { continue };
        for exe in parsed[&f].exec_start() {
            if exe.starts_with('/') && tree.resolve(&exe, true).is_err() {
                let message = format!("it starts `{exe}`, which does not exist in the image");
                if asked.contains(name) && !shipped.contains(name) {
                    return Err(InstallError::Override {
                        verb: "enable",
                        unit: name.clone(),
                        message,
                    });
                }
                return Err(refused(format!("unit {name}: {message}")));
            }
        }
    }
    Ok(())
}

/// The scriptlets of each installed package that are not exactly what
/// ingot did instead (its own systemd and sysusers ones); each package
/// with some also gets a warning.
fn scriptlets_not_run(
    tree: &Tree,
    report: &InstallReport,
    warnings: &mut Vec<String>,
) -> Vec<NotRun> {
    let mut not_run = Vec::new();
    for p in &report.installed {
        let left = not_replaced(tree, p);
        if !left.is_empty() {
            warnings.push(format!(
                "{}: scriptlets not run: {} (ingot never runs scriptlets)",
                p.package.nevra,
                left.join(", ")
            ));
            not_run.push(NotRun {
                package: p.package.nevra.clone(),
                scriptlets: left,
            });
        }
    }
    not_run
}

/// The slots of `p`'s scriptlets that differ from what rpm's systemd and
/// sysusers macros generate for its units and sysusers.d files.
fn not_replaced(tree: &Tree, p: &Installed) -> Vec<String> {
    let pkg_units = units_in(&p.files);
    let sysusers: Vec<(String, String)> = p
        .files
        .iter()
        .filter_map(|f| {
            let name = f.strip_prefix("/usr/lib/sysusers.d/")?;
            Some((name.to_string(), tree.read_text(f)?))
        })
        .collect();
    let mut left = Vec::new();
    for (slot, body) in &p.scriptlets {
        let generated = match slot.as_str() {
            "%post" => scriptlets::post(&pkg_units),
            "%preun" => scriptlets::preun(&pkg_units),
            "%postun" => scriptlets::postun(&pkg_units),
            "%pre" => sysusers
                .iter()
                .map(|(n, t)| scriptlets::sysusers_pre(n, t))
                .collect::<Vec<_>>()
                .join("\n\n"),
            _ => String::new(),
        };
        if generated.is_empty() || body.trim_end() != generated.trim_end() {
            left.push(slot.clone());
        }
    }
    left
}
