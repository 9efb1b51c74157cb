//! The manifest: what went into an image and what came out, with digests,
//! so a release manager can check an artifact with `sha256sum` and know
//! what is inside without opening it.
//!
//! In: facts gathered by bake (inputs and their digests, installed
//! packages, outputs). Out: `NAME-DIGEST.manifest.json`, documented in
//! `docs/manifest.md`. Every list is sorted or in a documented order;
//! paths are as the spec wrote them, never absolute host paths, so two
//! bakes in two folders give the same bytes.

pub mod sbom;
pub mod verify;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::input::InputError;
use crate::package::{NotRun, Package};

/// Bumped when a field changes meaning or goes away.
pub const MANIFEST_VERSION: u32 = 1;

/// The largest manifest `verify`, `inspect` and `diff` read. A bake's
/// manifest is a few KiB per package; 64 MiB is room for tens of thousands.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// Why a manifest cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Input(#[from] InputError),

    #[error("`{}` is not an ingot manifest: {reason}", path.display())]
    NotManifest { path: PathBuf, reason: String },

    #[error("`{}` has no `manifest_version`: it is not a manifest ingot wrote", path.display())]
    NoVersion { path: PathBuf },

    #[error(
        "`{}` has `manifest_version` {found}; this ingot reads version {MANIFEST_VERSION}",
        path.display()
    )]
    UnknownVersion { path: PathBuf, found: String },
}

/// Read a manifest: a regular file of at most [`MAX_MANIFEST_BYTES`], JSON,
/// with the `manifest_version` this ingot writes (checked before the rest
/// of the document, so a newer manifest says so instead of naming a field).
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let bytes = crate::input::read_small(path, MAX_MANIFEST_BYTES, "a manifest")?;
    let not = |e: serde_json::Error| ManifestError::NotManifest {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(not)?;
    let Some(obj) = doc.as_object() else {
        return Err(ManifestError::NotManifest {
            path: path.to_path_buf(),
            reason: "the document is not a JSON object".into(),
        });
    };
    match obj.get("manifest_version") {
        None => {
            return Err(ManifestError::NoVersion {
                path: path.to_path_buf(),
            });
        }
        Some(v) if v.as_u64() == Some(u64::from(MANIFEST_VERSION)) => {}
        Some(v) => {
            return Err(ManifestError::UnknownVersion {
                path: path.to_path_buf(),
                // JSON text: control characters come out escaped.
                found: v.to_string().chars().take(40).collect(),
            });
        }
    }
    serde_json::from_value(doc).map_err(not)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub manifest_version: u32,
    pub ingot_version: String,
    pub name: String,
    pub source_date_epoch: u64,
    pub inputs: Inputs,
    pub outputs: Vec<Output>,
    /// Packages ingot installed, in install order.
    pub packages: Vec<Installed>,
    /// Every package in the finished image's rpm database (base and new),
    /// by name: written as their NEVRA, SIGMD5 and license
    /// ([`image_packages`]).
    #[serde(with = "image_packages")]
    pub image_packages: Vec<Package>,
    /// Packages of the base that were upgraded away or obsoleted.
    pub removed: Vec<String>,
    /// Scriptlets present in installed packages that were not run.
    pub scriptlets_not_run: Vec<NotRun>,
    /// Units ingot enabled, disabled or masked.
    pub systemd: Systemd,
    /// The disk, when a disk format was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<Disk>,
    /// What the EBS direct APIs will compute for the raw image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs: Option<Ebs>,
    /// The parameters `RegisterImage` needs for this image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_image: Option<RegisterImage>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inputs {
    pub image_spec: Input,
    pub base: Input,
    /// Package specs built for the image, each with the RPM it gave.
    pub package_specs: Vec<BuiltInput>,
    /// Ready `.rpm` files named by the spec.
    pub rpms: Vec<Input>,
    /// The lock file the packages from repositories were taken by (absent
    /// when the image takes nothing from a repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<Input>,
    /// The packages taken from repositories, as the lock names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repository_packages: Vec<RepoInput>,
}

/// A package from a repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepoInput {
    pub nevra: String,
    /// The repository's name in the image spec (or the base's dnf
    /// configuration).
    pub repo: String,
    /// Its path below the repository's base URL.
    pub location: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Input {
    /// As the spec wrote it.
    pub path: String,
    pub sha256: String,
    /// `file`, `archive` or `directory` (a directory's digest is the one
    /// of ingot's reproducible tarball of it).
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuiltInput {
    pub path: String,
    pub sha256: String,
    pub rpm: String,
    pub rpm_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Output {
    pub file: String,
    pub format: String,
    pub size: u64,
    pub sha256: String,
}

/// A package ingot installed, and the one it replaced (an upgrade).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(into = "InstalledJson", from = "InstalledJson")]
pub struct Installed {
    pub package: Package,
    pub replaced: Option<String>,
}

/// How `packages[]` writes an [`Installed`]: these keys, in this order
/// (the manifest's format, `docs/manifest.md`).
#[derive(Serialize, Deserialize)]
struct InstalledJson {
    nevra: String,
    name: String,
    epoch: Option<u32>,
    version: String,
    release: String,
    arch: String,
    license: String,
    sigmd5: String,
    replaced: Option<String>,
}

impl From<Installed> for InstalledJson {
    fn from(i: Installed) -> Self {
        let p = i.package;
        InstalledJson {
            nevra: p.nevra,
            name: p.name,
            epoch: p.epoch,
            version: p.version,
            release: p.release,
            arch: p.arch,
            license: p.license,
            sigmd5: p.sigmd5,
            replaced: i.replaced,
        }
    }
}

impl From<InstalledJson> for Installed {
    fn from(j: InstalledJson) -> Self {
        Installed {
            package: Package {
                name: j.name,
                epoch: j.epoch,
                version: j.version,
                release: j.release,
                arch: j.arch,
                nevra: j.nevra,
                license: j.license,
                sigmd5: j.sigmd5,
                ..Package::default()
            },
            replaced: j.replaced,
        }
    }
}

/// `image_packages[]`: each package as its NEVRA, SIGMD5 and license;
/// read back through [`Package::from_nevra`].
mod image_packages {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::package::Package;

    #[derive(Serialize, Deserialize)]
    struct Entry {
        nevra: String,
        sigmd5: String,
        license: String,
    }

    pub fn serialize<S: Serializer>(packages: &[Package], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(packages.iter().map(|p| Entry {
            nevra: p.nevra.clone(),
            sigmd5: p.sigmd5.clone(),
            license: p.license.clone(),
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Package>, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        Ok(entries
            .iter()
            .map(|e| Package::from_nevra(&e.nevra, &e.sigmd5, &e.license))
            .collect())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Disk {
    pub size: u64,
    pub disk_guid: String,
    pub partitions: Vec<Partition>,
    /// The root filesystem's UUID (ext4 or XFS), and where it came from (`fstab`,
    /// `boot entries` of the base, or `derived` from the inputs).
    pub root_uuid: String,
    pub root_uuid_from: String,
    pub esp_volume_id: String,
    pub bootable: bool,
    pub not_bootable_because: Vec<String>,
    /// Whether the disk carries legacy-BIOS boot code (the MBR's and a
    /// BIOS boot partition's, brought from a base that is a disk image).
    #[serde(default)]
    pub bios_bootable: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub name: String,
    pub type_guid: String,
    pub guid: String,
    pub first_lba: u64,
    pub last_lba: u64,
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ebs {
    pub block_size: u32,
    /// Blocks an upload sends: the ones that are not all zeros.
    pub changed_blocks: u64,
    /// SHA-256, LINEAR aggregation, base64: `CompleteSnapshot`'s checksum.
    pub linear_checksum_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegisterImage {
    pub architecture: String,
    pub boot_mode: String,
    pub ena_support: bool,
    pub virtualization_type: String,
    pub root_device_name: String,
    pub volume_size_gib: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Systemd {
    pub enabled: Vec<String>,
    pub disabled: Vec<String>,
    pub masked: Vec<String>,
}

impl Manifest {
    /// The JSON text, pretty and ending in a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// The short digest used in output names: 16 hex digits.
pub fn short_digest(sha256_hex: &str) -> &str {
    &sha256_hex[..sha256_hex.len().min(16)]
}
