//! The image spec (`ingot bake`'s input): a base root filesystem, the
//! packages to install into it, systemd overrides, small file overlays and
//! the outputs to write.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::diag::{SpecError, escape};
use super::package::{Cx, Loc, SrcKind, warn_mode};

/// What the base root filesystem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseKind {
    Dir,
    /// A tar archive, compressed or not (detected from its bytes).
    Tar,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageRef {
    /// A package spec, built first.
    Spec { path: PathBuf, at: Loc },
    /// A ready `.rpm`.
    Rpm { path: PathBuf, at: Loc },
}

impl ImageSpec {
    /// The spec's base must exist when it is used, and be a folder or a
    /// regular file (an archive): anything else would block or never end.
    pub fn check_base(&self) -> Result<(), SpecError> {
        match std::fs::metadata(&self.base) {
            Ok(m) if m.is_dir() || m.is_file() => Ok(()),
            Ok(_) => Err(self.error_at(
                self.at_base,
                format!(
                    "base `{}` is neither a folder nor a regular file (an archive)",
                    self.base.display()
                ),
            )),
            Err(_) => Err(self
                .error_at(self.at_base, format!("base `{}` does not exist", self.base.display()))
                .with_hint("paths in a spec are relative to the spec's folder; `--base PATH` replaces the spec's base")),
        }
    }

    /// An error at `at` in this spec.
    pub fn error_at(&self, at: Loc, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.clone(),
            location: Some((at.line, at.column)),
            message: message.into(),
            hint: None,
        }
    }
}

impl PackageRef {
    pub fn path(&self) -> &Path {
        match self {
            PackageRef::Spec { path, .. } | PackageRef::Rpm { path, .. } => path,
        }
    }
}

pub use crate::arch::Arch;
pub use crate::disk::OutputFormat;
pub use crate::filesystem::FilesystemKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Auto,
    Bytes(u64),
}

/// A small file placed into the image after the packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub dest: String,
    pub content: OverlayContent,
    pub mode: u16,
    pub user: String,
    pub group: String,
    /// Where `dest` is written.
    pub at: Loc,
    /// Where `user` and `group` are written (`at` when they are not).
    pub at_user: Loc,
    pub at_group: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayContent {
    Text(String),
    File(PathBuf),
}

/// A unit named in `[image.systemd]`, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRef {
    pub name: String,
    pub at: Loc,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemdOverrides {
    pub enable: Vec<UnitRef>,
    pub disable: Vec<UnitRef>,
    pub mask: Vec<UnitRef>,
}

impl SystemdOverrides {
    /// Where the spec names `unit` in the list of `verb` (`enable`,
    /// `disable` or `mask`).
    pub fn find(&self, verb: &str, unit: &str) -> Option<Loc> {
        let list = match verb {
            "enable" => &self.enable,
            "disable" => &self.disable,
            "mask" => &self.mask,
            _ => return None,
        };
        list.iter().find(|u| u.name == unit).map(|u| u.at)
    }
}

#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub file: PathBuf,
    pub name: String,
    pub base: PathBuf,
    pub base_kind: BaseKind,
    pub base_sha256: Option<String>,
    pub packages: Vec<PackageRef>,
    pub size: Size,
    pub formats: Vec<OutputFormat>,
    /// The architecture the image is for (`x86_64` when not given).
    pub arch: Arch,
    /// The root filesystem of disk images; when not given, what the
    /// base's `/etc/fstab` names for `/`, else ext4 (see
    /// [`FilesystemKind::of_tree`]).
    pub filesystem: Option<FilesystemKind>,
    pub systemd: SystemdOverrides,
    pub files: Vec<Overlay>,
    /// `install`, `weak_deps`, `use_base_repos`, `releasever`,
    /// `[[image.repos]]`: packages from repositories.
    pub repositories: super::repos::Repositories,
    pub at_base: Loc,
    /// Where `base_sha256`, `size` and `formats` are written, when they are.
    pub at_base_sha256: Option<Loc>,
    pub at_size: Option<Loc>,
    pub at_formats: Option<Loc>,
    pub at_arch: Option<Loc>,
    /// Allowed but worth a second look (modes), each located.
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    image: RawImage,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    name: Spanned<String>,
    base: Spanned<String>,
    base_sha256: Option<Spanned<String>>,
    #[serde(default)]
    packages: Vec<Spanned<String>>,
    size: Option<Spanned<String>>,
    formats: Option<Spanned<Vec<Spanned<String>>>>,
    arch: Option<Spanned<String>>,
    filesystem: Option<Spanned<String>>,
    #[serde(default)]
    systemd: RawSystemd,
    #[serde(default)]
    files: Vec<RawOverlay>,
    #[serde(default)]
    install: Vec<Spanned<String>>,
    weak_deps: Option<Spanned<bool>>,
    use_base_repos: Option<Spanned<bool>>,
    releasever: Option<Spanned<String>>,
    #[serde(default)]
    repos: Vec<Spanned<super::repos::RawRepo>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSystemd {
    #[serde(default)]
    enable: Vec<Spanned<String>>,
    #[serde(default)]
    disable: Vec<Spanned<String>>,
    #[serde(default)]
    mask: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverlay {
    dest: Spanned<String>,
    src: Option<Spanned<String>>,
    content: Option<Spanned<String>>,
    mode: Option<Spanned<toml::Value>>,
    user: Option<Spanned<String>>,
    group: Option<Spanned<String>>,
}

/// `"auto"`, or a size such as `"8GiB"`, `"512MiB"`, `"2G"` (binary units).
pub fn parse_size(s: &str) -> Result<Size, String> {
    if s == "auto" {
        return Ok(Size::Auto);
    }
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = s[digits.len()..].trim();
    let n: u64 = digits.parse().map_err(|_| {
        format!(
            "size `{}` is neither \"auto\" nor a number with a unit such as \"8GiB\"",
            escape(s)
        )
    })?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit `{}`; use KiB, MiB, GiB or TiB",
                escape(unit)
            ));
        }
    };
    n.checked_mul(mult)
        .map(Size::Bytes)
        .ok_or_else(|| format!("size `{}` is too large", escape(s)))
}

pub fn load_image(file: &Path) -> Result<ImageSpec, SpecError> {
    let text = super::diag::read_spec_text(file)?;
    parse_image(file, &text)
}

pub fn parse_image(file: &Path, text: &str) -> Result<ImageSpec, SpecError> {
    let raw: Raw = toml::from_str(text).map_err(|e| SpecError::from_toml(file, text, &e))?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cx = Cx { file, text, dir };
    let im = &raw.image;
    let name = cx.line_field(&im.name, "image name")?;
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._".contains(*c)))
    {
        return Err(cx.err(
            &im.name,
            format!("image name `{name}` contains `{c}`; it becomes a file name, so use letters, digits, - . _"),
        ));
    }
    // The base is checked when it is used (`--base` may replace it).
    cx.line_field(&im.base, "base")?;
    let base = cx.dir.join(im.base.get_ref());
    let base_kind = if base.is_dir() {
        BaseKind::Dir
    } else {
        BaseKind::Tar
    };
    let base_sha256 = match &im.base_sha256 {
        Some(v) => {
            let s = v.get_ref().to_ascii_lowercase();
            if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(cx.err(v, "base_sha256 must be 64 hexadecimal digits"));
            }
            if base_kind == BaseKind::Dir {
                return Err(cx.err(v, "base_sha256 pins an archive; the base is a folder"));
            }
            Some(s)
        }
        None => None,
    };
    let mut packages = Vec::new();
    for p in &im.packages {
        let path = cx.src(p, SrcKind::File)?;
        let at = cx.loc(p);
        let s = p.get_ref();
        packages.push(if s.ends_with(".toml") {
            PackageRef::Spec { path, at }
        } else if s.ends_with(".rpm") {
            PackageRef::Rpm { path, at }
        } else {
            return Err(cx.err(p, "a package is a package spec (.toml) or an .rpm file"));
        });
    }
    let size = match &im.size {
        Some(v) => {
            let size = parse_size(v.get_ref()).map_err(|m| cx.err(v, m))?;
            if let Size::Bytes(b) = size
                && b % (1 << 20) != 0
            {
                return Err(cx.err(
                    v,
                    format!(
                        "size `{}` is not a whole number of MiB",
                        escape(v.get_ref())
                    ),
                ));
            }
            size
        }
        None => Size::Auto,
    };
    let formats = parse_formats(&cx, im.formats.as_ref())?;
    let arch = parse_arch(&cx, im.arch.as_ref())?;
    let filesystem = match &im.filesystem {
        None => None,
        Some(fs) => Some(FilesystemKind::from_name(fs.get_ref()).ok_or_else(|| {
            let names: Vec<&str> = FilesystemKind::ALL.iter().map(|k| k.name()).collect();
            cx.err(
                fs,
                format!(
                    "filesystem `{}` is not supported; use {}",
                    escape(fs.get_ref()),
                    names.join(" or ")
                ),
            )
        })?),
    };
    let units = |list: &[Spanned<String>]| -> Result<Vec<UnitRef>, SpecError> {
        list.iter()
            .map(|u| {
                cx.line_field(u, "unit name")?;
                crate::systemd::unit::check_unit_name(u.get_ref()).map_err(|m| cx.err(u, m))?;
                Ok(UnitRef {
                    name: u.get_ref().clone(),
                    at: cx.loc(u),
                })
            })
            .collect()
    };
    let systemd = SystemdOverrides {
        enable: units(&im.systemd.enable)?,
        disable: units(&im.systemd.disable)?,
        mask: units(&im.systemd.mask)?,
    };
    let mut warnings = Vec::new();
    let files = parse_overlays(&cx, &im.files, &mut warnings)?;
    let repositories = super::repos::parse(
        &cx,
        &super::repos::RawRepositories {
            install: &im.install,
            weak_deps: im.weak_deps.as_ref(),
            use_base_repos: im.use_base_repos.as_ref(),
            releasever: im.releasever.as_ref(),
            repos: &im.repos,
        },
    )?;
    Ok(ImageSpec {
        file: file.to_path_buf(),
        name,
        at_base: cx.loc(&im.base),
        at_base_sha256: im.base_sha256.as_ref().map(|v| cx.loc(v)),
        at_size: im.size.as_ref().map(|v| cx.loc(v)),
        at_formats: im.formats.as_ref().map(|v| cx.loc(v)),
        at_arch: im.arch.as_ref().map(|v| cx.loc(v)),
        base,
        base_kind,
        base_sha256,
        packages,
        size,
        formats,
        arch,
        filesystem,
        systemd,
        files,
        repositories,
        warnings,
    })
}

/// `formats`, sorted, each once; `raw` when the key is absent.
fn parse_formats(
    cx: &Cx,
    list: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<OutputFormat>, SpecError> {
    let Some(list) = list else {
        return Ok(vec![OutputFormat::Raw]);
    };
    if list.get_ref().is_empty() {
        return Err(cx.err(list, "formats is empty; name at least one output"));
    }
    let names: Vec<&str> = OutputFormat::ALL.iter().map(|f| f.name()).collect();
    let mut formats = Vec::new();
    for f in list.get_ref() {
        let fmt = OutputFormat::from_name(f.get_ref()).ok_or_else(|| {
            let mut e = cx.err(
                f,
                format!(
                    "unknown format `{}`; use {}",
                    escape(f.get_ref()),
                    names.join(", ")
                ),
            );
            if let Some(m) = super::diag::did_you_mean(f.get_ref(), names.iter().copied()) {
                e = e.with_hint(format!("did you mean `{m}`?"));
            }
            e
        })?;
        if !formats.contains(&fmt) {
            formats.push(fmt);
        }
    }
    formats.sort();
    Ok(formats)
}

/// `arch`: `x86_64` when absent; `aarch64` is known but not made yet.
fn parse_arch(cx: &Cx, v: Option<&Spanned<String>>) -> Result<Arch, SpecError> {
    let Some(v) = v else {
        return Ok(Arch::X86_64);
    };
    let names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
    let arch = Arch::from_name(v.get_ref()).ok_or_else(|| {
        let mut e = cx.err(
            v,
            format!(
                "unknown arch `{}`; use {}",
                escape(v.get_ref()),
                names.join(" or ")
            ),
        );
        if let Some(m) = super::diag::did_you_mean(v.get_ref(), names.iter().copied()) {
            e = e.with_hint(format!("did you mean `{m}`?"));
        }
        e
    })?;
    if !arch.supported() {
        return Err(cx.err(
            v,
            format!("arch `{arch}` is not supported yet; ingot makes x86_64 images"),
        ));
    }
    Ok(arch)
}

/// The `[[image.files]]` entries: each `dest` once, each `src` a regular
/// file, `content` free of control characters but line breaks and tabs.
fn parse_overlays(
    cx: &Cx,
    raw: &[RawOverlay],
    warnings: &mut Vec<String>,
) -> Result<Vec<Overlay>, SpecError> {
    let mut files = Vec::new();
    let mut seen: std::collections::BTreeMap<String, Loc> = Default::default();
    for f in raw {
        let dest = cx.dest(&f.dest)?;
        let at = cx.loc(&f.dest);
        if let Some(first) = seen.get(&dest) {
            return Err(cx
                .err(
                    &f.dest,
                    format!(
                        "`{dest}` is placed twice: here and at line {}, column {}",
                        first.line, first.column
                    ),
                )
                .with_hint("keep one `[[image.files]]` entry per destination"));
        }
        seen.insert(dest.clone(), at);
        let content = match (&f.src, &f.content) {
            (Some(s), None) => OverlayContent::File(cx.src(s, SrcKind::File)?),
            (None, Some(c)) => {
                if let Some(ch) = c
                    .get_ref()
                    .chars()
                    .find(|ch| ch.is_control() && *ch != '\n' && *ch != '\t')
                {
                    return Err(cx
                        .err(c, format!("content contains the control character {ch:?}"))
                        .with_hint("put a file with other bytes in place with `src`"));
                }
                OverlayContent::Text(c.get_ref().clone())
            }
            (Some(s), Some(_)) => return Err(cx.err(s, "give either `src` or `content`, not both")),
            (None, None) => {
                return Err(cx.err(&f.dest, format!("`{dest}` needs `src` or `content`")));
            }
        };
        let mode = f.mode.as_ref().map(|m| cx.mode(m)).transpose()?;
        if let (Some(m), Some(v)) = (mode, &f.mode) {
            warn_mode(cx, v, (m, false), &dest, warnings);
        }
        let account =
            |v: &Option<Spanned<String>>, what: &str| -> Result<(String, Loc), SpecError> {
                match v {
                    Some(v) => Ok((cx.account(v, what)?, cx.loc(v))),
                    None => Ok(("root".into(), at)),
                }
            };
        let (user, at_user) = account(&f.user, "user")?;
        let (group, at_group) = account(&f.group, "group")?;
        files.push(Overlay {
            dest,
            content,
            mode: mode.unwrap_or(0o644),
            user,
            group,
            at,
            at_user,
            at_group,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("auto"), Ok(Size::Auto));
        assert_eq!(parse_size("8GiB"), Ok(Size::Bytes(8 << 30)));
        assert_eq!(parse_size("512M"), Ok(Size::Bytes(512 << 20)));
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("GiB").is_err());
    }

    #[test]
    fn the_filesystem_key_names_ext4_or_xfs_or_is_left_to_the_base() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("base")).unwrap();
        let spec = t.path().join("img.toml");
        let parse = |extra: &str| {
            let text = format!("[image]\nname = \"x\"\nbase = \"base\"\n{extra}");
            parse_image(&spec, &text)
        };
        assert_eq!(parse("").unwrap().filesystem, None);
        assert_eq!(
            parse("filesystem = \"xfs\"\n").unwrap().filesystem,
            Some(FilesystemKind::Xfs)
        );
        assert_eq!(
            parse("filesystem = \"ext4\"\n").unwrap().filesystem,
            Some(FilesystemKind::Ext4)
        );
        let e = parse("filesystem = \"btrfs\"\n").unwrap_err().to_string();
        assert!(e.contains("use ext4 or xfs"), "{e}");
    }

    #[test]
    fn image_spec_parses_and_checks_references() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("base")).unwrap();
        std::fs::write(t.path().join("app.rpm"), b"").unwrap();
        let spec = t.path().join("img.toml");
        let text = r#"
[image]
name = "web"
base = "base"
packages = ["app.rpm"]
formats = ["tar", "raw", "tar"]
size = "2GiB"

[image.systemd]
enable = ["sshd.service"]
mask = ["systemd-firstboot.service"]

[[image.files]]
dest = "/etc/hostname"
content = "web\n"
"#;
        let im = parse_image(&spec, text).unwrap();
        assert_eq!(im.formats, [OutputFormat::Raw, OutputFormat::Tar]);
        assert_eq!(im.size, Size::Bytes(2 << 30));
        assert_eq!(im.base_kind, BaseKind::Dir);
        assert_eq!(im.systemd.mask[0].name, "systemd-firstboot.service");
        assert_eq!(
            im.systemd
                .find("mask", "systemd-firstboot.service")
                .map(|l| l.line),
            Some(11)
        );
        assert_eq!(im.files[0].content, OverlayContent::Text("web\n".into()));
        let bad = text.replace("\"tar\", \"raw\"", "\"tarr\", \"raw\"");
        let e = parse_image(&spec, &bad).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `tar`?"));
        let bad = text.replace("app.rpm", "missing.rpm");
        assert!(
            parse_image(&spec, &bad)
                .unwrap_err()
                .message
                .contains("does not exist")
        );
        let bad = text.replace("sshd.service", "sshd");
        assert!(parse_image(&spec, &bad).is_err());
    }
}
