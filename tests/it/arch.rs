//! `arch` in the image spec: `x86_64` unless given; every package must be
//! for it or `noarch`; `aarch64` is known but not made yet.

use std::path::Path;

use crate::common::{ingot, repo_root, stderr};

fn image(dir: &Path, arch: Option<&str>, packages: &[&str]) -> std::path::PathBuf {
    let list: Vec<String> = packages.iter().map(|p| format!("{p:?}")).collect();
    let spec = dir.join("image.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"a\"\nbase = {:?}\n{}packages = [{}]\nformats = [\"tar\"]\n",
            repo_root()
                .join("fixtures/al2023-standin/rootfs.tar.zst")
                .display()
                .to_string(),
            arch.map(|a| format!("arch = \"{a}\"\n"))
                .unwrap_or_default(),
            list.join(", ")
        ),
    )
    .unwrap();
    spec
}

fn crafted(dir: &Path, arch: &str) -> String {
    let mut b = rpm::PackageBuilder::new("other", "1.0", "MIT", arch, "crafted");
    b.with_file_contents(b"x\n".to_vec(), rpm::FileOptions::new("/opt/other/x"))
        .unwrap();
    let name = format!("other-1.0-1.{arch}.rpm");
    b.build().unwrap().write_file(dir.join(&name)).unwrap();
    name
}

fn bake(spec: &Path, out: &Path) -> std::process::Output {
    ingot()
        .arg("bake")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--no-deps-check")
        .output()
        .unwrap()
}

#[test]
fn a_package_for_another_architecture_is_refused_at_its_line() {
    let t = tempfile::tempdir().unwrap();
    let pkg = crafted(t.path(), "aarch64");
    let spec = image(t.path(), None, &[&pkg]);
    let o = bake(&spec, &t.path().join("out"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}`:4:", spec.display()))
            && err.contains("is for aarch64, but the image is for x86_64"),
        "{err}"
    );
    assert!(!t.path().join("out").exists());
    // noarch and the image's own arch go in.
    for arch in ["noarch", "x86_64"] {
        let d = t.path().join(arch);
        std::fs::create_dir_all(&d).unwrap();
        let pkg = crafted(&d, arch);
        let spec = image(&d, Some("x86_64"), &[&pkg]);
        let o = bake(&spec, &d.join("out"));
        assert!(o.status.success(), "{arch}: {}", stderr(&o));
    }
}

#[test]
fn an_aarch64_image_is_not_made_yet_and_an_unknown_arch_is_named() {
    let t = tempfile::tempdir().unwrap();
    for (arch, says) in [
        ("aarch64", "arch `aarch64` is not supported yet"),
        ("x86-64", "unknown arch `x86-64`"),
    ] {
        let spec = image(t.path(), Some(arch), &[]);
        let o = bake(&spec, &t.path().join("out"));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{}`:4:8", spec.display())) && err.contains(says),
            "{err}"
        );
        assert!(!t.path().join("out").exists());
    }
}
