//! The image spec (`ingot bake`'s input): a base root filesystem, the
//! packages to install into it, systemd overrides, small file overlays and
//! the outputs to write.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::diag::SpecError;
use super::package::{Cx, Loc, SrcKind};

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
    /// The spec's base must exist when it is used.
    pub fn check_base(&self) -> Result<(), SpecError> {
        if std::fs::symlink_metadata(&self.base).is_ok() {
            return Ok(());
        }
        Err(SpecError {
            file: self.file.clone(),
            location: Some((self.at_base.line, self.at_base.column)),
            message: format!("base `{}` does not exist", self.base.display()),
            hint: Some("paths in a spec are relative to the spec's folder; `--base PATH` replaces the spec's base".into()),
        })
    }
}

impl PackageRef {
    pub fn path(&self) -> &Path {
        match self {
            PackageRef::Spec { path, .. } | PackageRef::Rpm { path, .. } => path,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Raw,
    Vmdk,
    Vhd,
    Tar,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
            Format::Tar => "tar",
        }
    }
}

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
    pub at: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayContent {
    Text(String),
    File(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemdOverrides {
    pub enable: Vec<String>,
    pub disable: Vec<String>,
    pub mask: Vec<String>,
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
    pub formats: Vec<Format>,
    pub systemd: SystemdOverrides,
    pub files: Vec<Overlay>,
    pub at_base: Loc,
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
    formats: Option<Vec<Spanned<String>>>,
    filesystem: Option<Spanned<String>>,
    #[serde(default)]
    systemd: RawSystemd,
    #[serde(default)]
    files: Vec<RawOverlay>,
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
        format!("size `{s}` is neither \"auto\" nor a number with a unit such as \"8GiB\"")
    })?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit `{unit}`; use KiB, MiB, GiB or TiB"
            ));
        }
    };
    n.checked_mul(mult)
        .map(Size::Bytes)
        .ok_or_else(|| format!("size `{s}` is too large"))
}

pub fn load_image(file: &Path) -> Result<ImageSpec, SpecError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| SpecError::whole(file, format!("cannot read the spec: {e}")))?;
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
        Some(v) => parse_size(v.get_ref()).map_err(|m| cx.err(v, m))?,
        None => Size::Auto,
    };
    let mut formats = Vec::new();
    match &im.formats {
        None => formats.push(Format::Raw),
        Some(list) => {
            if list.is_empty() {
                return Err(SpecError::whole(
                    file,
                    "formats is empty; name at least one output",
                ));
            }
            for f in list {
                let all = [Format::Raw, Format::Vmdk, Format::Vhd, Format::Tar];
                let fmt = all
                    .into_iter()
                    .find(|x| x.name() == f.get_ref())
                    .ok_or_else(|| {
                        let mut e = cx.err(
                            f,
                            format!(
                                "unknown format `{}`; use raw, vmdk, vhd or tar",
                                f.get_ref()
                            ),
                        );
                        if let Some(m) =
                            super::diag::did_you_mean(f.get_ref(), all.iter().map(|x| x.name()))
                        {
                            e = e.with_hint(format!("did you mean `{m}`?"));
                        }
                        e
                    })?;
                if !formats.contains(&fmt) {
                    formats.push(fmt);
                }
            }
        }
    }
    formats.sort();
    if let Some(fs) = &im.filesystem
        && fs.get_ref() != "ext4"
    {
        return Err(cx.err(
            fs,
            format!("filesystem `{}` is not supported; use ext4", fs.get_ref()),
        ));
    }
    let units = |list: &[Spanned<String>]| -> Result<Vec<String>, SpecError> {
        list.iter()
            .map(|u| {
                crate::systemd::unit::check_unit_name(u.get_ref()).map_err(|m| cx.err(u, m))?;
                Ok(u.get_ref().clone())
            })
            .collect()
    };
    let systemd = SystemdOverrides {
        enable: units(&im.systemd.enable)?,
        disable: units(&im.systemd.disable)?,
        mask: units(&im.systemd.mask)?,
    };
    let mut files = Vec::new();
    for f in &im.files {
        let dest = cx.dest(&f.dest)?;
        let content = match (&f.src, &f.content) {
            (Some(s), None) => OverlayContent::File(cx.src(s, SrcKind::File)?),
            (None, Some(c)) => OverlayContent::Text(c.get_ref().clone()),
            (Some(s), Some(_)) => return Err(cx.err(s, "give either `src` or `content`, not both")),
            (None, None) => {
                return Err(cx.err(&f.dest, format!("`{dest}` needs `src` or `content`")));
            }
        };
        files.push(Overlay {
            dest,
            content,
            mode: f
                .mode
                .as_ref()
                .map(|m| cx.mode(m))
                .transpose()?
                .unwrap_or(0o644),
            user: f
                .user
                .as_ref()
                .map(|u| cx.account(u, "user"))
                .transpose()?
                .unwrap_or_else(|| "root".into()),
            group: f
                .group
                .as_ref()
                .map(|g| cx.account(g, "group"))
                .transpose()?
                .unwrap_or_else(|| "root".into()),
            at: cx.loc(&f.dest),
        });
    }
    Ok(ImageSpec {
        file: file.to_path_buf(),
        name,
        at_base: cx.loc(&im.base),
        base,
        base_kind,
        base_sha256,
        packages,
        size,
        formats,
        systemd,
        files,
    })
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
        assert_eq!(im.formats, [Format::Raw, Format::Tar]);
        assert_eq!(im.size, Size::Bytes(2 << 30));
        assert_eq!(im.base_kind, BaseKind::Dir);
        assert_eq!(im.systemd.mask, ["systemd-firstboot.service"]);
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
