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
use crate::rootfs::{Kind, Meta, Node, PutError, Tree};
use crate::spec::image::SystemdOverrides;
use crate::systemd::{accounts, enable, preset, scriptlets, unit};

use super::{InstallError, InstallReport};

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
    let mut warnings = Vec::new();
    // The unit files and links of the tree.
    let mut units = enable::UnitTree::new();
    let mut parsed: BTreeMap<String, unit::UnitFile> = BTreeMap::new();
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
                Kind::Symlink(t) => units.add_symlink(&path, &String::from_utf8_lossy(t)),
                Kind::Dir(sub) => {
                    let entries: Vec<(String, Option<String>)> = sub
                        .entries()
                        .keys()
                        .map(|n| String::from_utf8_lossy(n).into_owned())
                        .map(|n| {
                            let p = format!("{path}/{n}");
                            let link = tree.resolve(&p, false).ok().and_then(|x| {
                                match &tree.node(x).kind {
                                    Kind::Symlink(t) => {
                                        Some(String::from_utf8_lossy(t).into_owned())
                                    }
                                    _ => None,
                                }
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
                Kind::File(f) if f.size == 0 => units.add_empty_file(&path),
                Kind::File(_) => match tree.read_text(&path).map(|t| unit::parse(&t)) {
                    Some(Ok(u)) => {
                        parsed.insert(path.clone(), u.clone());
                        units.add_file(&path, u);
                    }
                    Some(Err(e)) => warnings.push(format!(
                        "unit file {path} does not parse ({e}); left as it is"
                    )),
                    None => {}
                },
                _ => {}
            }
        }
    }
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
    let rules = preset::PresetRules::for_systemd_version(preset_files, 252);

    // Units the new packages ship: preset them, as %systemd_post would.
    let mut shipped: Vec<String> = Vec::new();
    for p in &report.installed {
        shipped.extend(units_in(&p.files));
    }
    shipped.sort();
    shipped.dedup();
    let mut ops = Vec::new();
    if !shipped.is_empty() {
        ops.push(enable::Operation::preset(shipped.clone()));
    }
    // The image's own units one by one, so that a failure names the entry
    // of the spec that caused it.
    for u in &overrides.enable {
        ops.push(enable::Operation::enable([u.name.clone()]));
    }
    for u in &overrides.disable {
        ops.push(enable::Operation::disable([u.name.clone()]));
    }
    for u in &overrides.mask {
        ops.push(enable::Operation::mask([u.name.clone()]));
    }
    let out = enable::apply(&units, &rules, &ops).map_err(|e| match e.verb {
        enable::Verb::Preset => refused(format!("systemd: {e}")),
        verb => InstallError::Override {
            verb: verb.as_str(),
            unit: e.units.first().cloned().unwrap_or_default(),
            message: e.message,
        },
    })?;
    warnings.extend(out.warnings.iter().cloned());

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
    for (path, target) in &out.created {
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("/");
        tree.mkdir_p(parent, &dir_meta)
            .map_err(|source| InstallError::Place {
                package: "systemd".into(),
                path: path.clone(),
                source,
            })?;
        let _ = tree.remove(path);
        tree.insert_path(
            path,
            Node::symlink(
                Meta::new(0o777, 0, 0, i64::from(time)),
                target.as_bytes().to_vec(),
            ),
        )
        .map_err(|source| InstallError::Place {
            package: "systemd".into(),
            path: path.clone(),
            source,
        })?;
    }

    // What ends up enabled: units some link points at.
    let mut enabled: BTreeSet<String> = BTreeSet::new();
    let mut masked: BTreeSet<String> = BTreeSet::new();
    for (path, target) in &out.links {
        let name = path.rsplit('/').next().unwrap_or("").to_string();
        if target == "/dev/null" {
            masked.insert(name);
        } else if path.contains(".wants/") || path.contains(".requires/") {
            enabled.insert(name);
        }
    }
    // An enabled unit whose program is missing would fail at boot.
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
        if let Some(f) = file {
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
    }

    // Scriptlets: ingot's own systemd and sysusers ones are done above.
    let mut not_run = Vec::new();
    for p in &report.installed {
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
    Ok(Activation {
        enabled: enabled.into_iter().collect(),
        disabled: overrides.disable.iter().map(|u| u.name.clone()).collect(),
        masked: masked.into_iter().collect(),
        not_run,
        warnings,
    })
}
