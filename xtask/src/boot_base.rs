//! `cargo xtask boot-base`: build (once, cached) the bootable Debian 12
//! test base described in `fixtures/boot-base/README.md`.
//!
//! mmdebstrap (as root) makes the root filesystem with
//! `fixtures/boot-base/customize.sh`; ingot then adds an rpm database
//! holding `debian-provides.toml`, so bakes check dependencies against
//! what Debian offers. The result goes to
//! `target/boot-base/debian12-boot.tar.zst`, stamped with the digest of
//! its inputs: a rerun with the same inputs does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use ingot::install::{self, InstallOptions};
use ingot::rpm::{BuildOptions, Compression};

const SUITE: &str = "bookworm";
const PACKAGES: &str = "systemd,systemd-sysv,udev,dbus,iproute2,linux-image-cloud-amd64,initramfs-tools,systemd-boot-efi,python3";
/// The time given to mmdebstrap and to ingot for this base.
const DATE: u64 = 1_747_699_200; // 2025-05-20

pub fn output(root: &Path) -> PathBuf {
    root.join("target/boot-base/debian12-boot.tar.zst")
}

fn inputs_digest(root: &Path) -> Result<String, String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for f in ["customize.sh", "debian-provides.toml"] {
        let p = root.join("fixtures/boot-base").join(f);
        h.update(std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?);
    }
    h.update(SUITE.as_bytes());
    h.update(PACKAGES.as_bytes());
    Ok(hex::encode(h.finalize()))
}

pub fn run(root: &Path) -> Result<PathBuf, String> {
    let out = output(root);
    let stamp = out.with_extension("inputs-sha256");
    let digest = inputs_digest(root)?;
    if out.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest) {
        eprintln!("xtask: boot base is up to date: {}", out.display());
        return Ok(out);
    }
    let dir = out.parent().unwrap_or(root);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let work = tempfile::tempdir_in(dir).map_err(|e| e.to_string())?;
    let debootstrapped = work.path().join("mmdebstrap.tar");
    let hook = root.join("fixtures/boot-base/customize.sh");
    eprintln!("xtask: building the boot base with mmdebstrap (about 90 s)");
    let status = Command::new("mmdebstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}")])
        .arg(format!("--customize-hook={} \"$1\"", hook.display()))
        .arg(SUITE)
        .arg(&debootstrapped)
        .env("SOURCE_DATE_EPOCH", DATE.to_string())
        .status()
        .map_err(|e| format!("cannot run mmdebstrap (apt-get install mmdebstrap): {e}"))?;
    if !status.success() {
        return Err(format!("mmdebstrap failed with {status}"));
    }

    // The rpm database that says what Debian provides.
    let spec_path = root.join("fixtures/boot-base/debian-provides.toml");
    let spec = ingot::spec::load_package(&spec_path).map_err(|e| e.to_string())?;
    let built = ingot::rpm::build_package(
        &spec,
        &BuildOptions {
            compression: Compression::Zstd(3),
            source_date_epoch: Some(DATE),
            sign_key: None,
        },
    )
    .map_err(|e| e.to_string())?;
    let rpm = work.path().join(&built.file_name);
    std::fs::write(&rpm, &built.bytes).map_err(|e| e.to_string())?;
    let mut tree =
        ingot::rootfs::import(&debootstrapped, Some(work.path())).map_err(|e| e.to_string())?;
    install::install(
        &mut tree,
        &[rpm],
        &InstallOptions {
            install_time: DATE as u32,
            deps_check: true,
            work_dir: work.path().to_path_buf(),
        },
    )
    .map_err(|e| e.to_string())?;
    let tmp = work.path().join("base.tar.zst");
    {
        let f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
        let mut z = zstd::stream::write::Encoder::new(f, 3).map_err(|e| e.to_string())?;
        tree.write_tar(&mut z).map_err(|e| e.to_string())?;
        z.finish().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
    std::fs::write(&stamp, format!("{digest}\n")).map_err(|e| e.to_string())?;
    eprintln!("xtask: wrote {}", out.display());
    Ok(out)
}
