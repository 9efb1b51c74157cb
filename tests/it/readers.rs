//! The commands that read things back (`verify`, `inspect`, `diff`) on
//! inputs nobody should have given them: FIFOs, devices, manifests of
//! another version or with nothing in them, and kinds that cannot be
//! compared. Each must answer with a clear error (exit 2) or a failed
//! check, and never hang: every run here is waited on with a generous
//! limit, after which the test kills it and fails.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::{ingot, stderr, stdout};

/// Far longer than any of these commands needs; only a hang reaches it.
const HANG: Duration = Duration::from_secs(120);

/// Run `cmd` to the end, or kill it and fail the test if it is still
/// running after [`HANG`].
pub fn output_or_hang(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran after {HANG:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a plain syscall on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A manifest naming `outputs` (file name, bytes) of the folder it is
/// written to, each with its real size and digest.
fn manifest(dir: &Path, version: serde_json::Value, outputs: &[(&str, &[u8])]) -> PathBuf {
    let outs: Vec<serde_json::Value> = outputs
        .iter()
        .map(|(name, bytes)| {
            std::fs::write(dir.join(name), bytes).unwrap();
            serde_json::json!({
                "file": name,
                "format": "raw",
                "size": bytes.len(),
                "sha256": hex::encode(Sha256::digest(bytes)),
            })
        })
        .collect();
    let input = serde_json::json!({"path": "x", "sha256": "00", "kind": "file"});
    let doc = serde_json::json!({
        "manifest_version": version,
        "ingot_version": "0.1.0",
        "name": "t",
        "source_date_epoch": 0,
        "inputs": {"image_spec": input, "base": input, "package_specs": [], "rpms": []},
        "outputs": outs,
        "packages": [],
        "image_packages": [],
        "removed": [],
        "scriptlets_not_run": [],
        "systemd": {"enabled": [], "disabled": [], "masked": []},
        "warnings": [],
    });
    let p = dir.join("t.manifest.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    p
}

fn verify(manifest: &Path) -> Output {
    output_or_hang(ingot().arg("verify").arg(manifest))
}

#[test]
fn verify_checks_a_handmade_manifest_and_fails_on_a_changed_byte() {
    let t = tempfile::tempdir().unwrap();
    let m = manifest(t.path(), 1.into(), &[("a.raw", b"disk"), ("a.tar", b"tar")]);
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "a.raw: OK\na.tar: OK\n");
    std::fs::write(t.path().join("a.tar"), b"taR").unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("a.tar: MISMATCH"), "{}", stdout(&o));
}

#[test]
fn verify_refuses_a_manifest_with_no_outputs_before_any_work() {
    let t = tempfile::tempdir().unwrap();
    let m = manifest(t.path(), 1.into(), &[]);
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("names no outputs: there is nothing to verify"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
}

#[test]
fn verify_refuses_an_unknown_or_missing_manifest_version() {
    let t = tempfile::tempdir().unwrap();
    for (v, said) in [
        (
            serde_json::json!(2),
            "has `manifest_version` 2; this ingot reads version 1",
        ),
        (serde_json::json!("1"), "has `manifest_version` \"1\""),
    ] {
        let m = manifest(t.path(), v, &[("a.raw", b"disk")]);
        let o = verify(&m);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
    }
    let m = manifest(t.path(), 1.into(), &[("a.raw", b"disk")]);
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("\"manifest_version\": 1,", "");
    std::fs::write(&m, text).unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("has no `manifest_version`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verify_does_not_read_an_output_that_is_a_fifo_or_dev_zero() {
    let t = tempfile::tempdir().unwrap();
    let m = manifest(t.path(), 1.into(), &[("a.raw", b"disk"), ("a.tar", b"tar")]);
    std::fs::remove_file(t.path().join("a.raw")).unwrap();
    mkfifo(&t.path().join("a.raw"));
    std::fs::remove_file(t.path().join("a.tar")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", t.path().join("a.tar")).unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("a.raw: NOT A REGULAR FILE (a FIFO; not read)"),
        "{out}"
    );
    assert!(
        out.contains("a.tar: NOT A REGULAR FILE (a character device; not read)"),
        "{out}"
    );
}

#[test]
fn verify_refuses_a_manifest_that_is_a_fifo_or_dev_zero() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("m.manifest.json");
    mkfifo(&fifo);
    for (path, what) in [
        (fifo.as_path(), "is a FIFO, not a regular file"),
        (
            Path::new("/dev/zero"),
            "is a character device, not a regular file",
        ),
    ] {
        let o = verify(path);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
    }
}

#[test]
fn verify_refuses_a_manifest_over_the_size_limit() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("big.manifest.json");
    let f = std::fs::File::create(&m).unwrap();
    // Sparse: 65 MiB of nothing costs no disk.
    f.set_len(65 * 1024 * 1024).unwrap();
    let o = verify(&m);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("over the 67108864-byte limit for a manifest"),
        "{}",
        stderr(&o)
    );
}

/// Where the real packages are: `../shared/fixtures/real-rpms` and the
/// `rpm` crate's own test packages (found through `cargo metadata`).
fn real_rpms() -> Vec<PathBuf> {
    let mut dirs = vec![crate::common::repo_root().join("../shared/fixtures/real-rpms")];
    let meta = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(crate::common::repo_root())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&meta.stdout).unwrap_or_default();
    let rpm_crate = doc["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "rpm")
        .and_then(|p| p["manifest_path"].as_str())
        .map(|m| Path::new(m).parent().unwrap().join("tests/assets/RPMS"));
    dirs.extend(rpm_crate);
    let mut out = Vec::new();
    for d in &dirs {
        if !d.is_dir() {
            assert!(
                !crate::common::in_ci(),
                "{} is missing, and CI=true",
                d.display()
            );
            eprintln!("SKIPPED: {} is not present", d.display());
            continue;
        }
        for e in walkdir::WalkDir::new(d).sort_by_file_name() {
            let e = e.unwrap();
            if e.path().extension().is_some_and(|x| x == "rpm") {
                out.push(e.path().to_path_buf());
            }
        }
    }
    out
}

#[test]
fn inspect_agrees_with_rpm_on_sizes_and_digests_of_real_packages() {
    let rpm = crate::need!("rpm");
    let mut compared = 0;
    let mut md5_seen = false;
    for pkg in real_rpms() {
        let q = |fmt: &str| {
            Command::new(&rpm)
                .args(["-qp", "--nosignature", "--nodigest", "--qf", fmt])
                .arg(&pkg)
                .output()
                .unwrap()
        };
        let algo = q("%{FILEDIGESTALGO}");
        let files = q("[%{FILENAMES}\\t%{LONGFILESIZES}\\t%{FILEDIGESTS}\\n]");
        if !algo.status.success() || !files.status.success() {
            // Packages this rpm cannot read (newer signature kinds) are
            // not a judgement on ingot.
            eprintln!("rpm cannot read {}: {}", pkg.display(), stderr(&files));
            continue;
        }
        let algo = match stdout(&algo).as_str() {
            "(none)" => "md5".to_string(),
            n => ingot::inspect::digest_algo_name(n.parse().unwrap()),
        };
        md5_seen |= algo == "md5";
        let o = output_or_hang(ingot().args(["--json", "inspect", "--files"]).arg(&pkg));
        assert!(o.status.success(), "{}: {}", pkg.display(), stderr(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["file_digest_algo"], algo.as_str(), "{}", pkg.display());
        let ours: Vec<String> = doc["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}\t{}\t{}",
                    f["path"].as_str().unwrap(),
                    f["size"],
                    f[algo.as_str()].as_str().unwrap_or("")
                )
            })
            .collect();
        let theirs = stdout(&files);
        let theirs: Vec<&str> = theirs.lines().collect();
        assert_eq!(ours, theirs, "{}", pkg.display());
        for other in ["md5", "sha256"] {
            if other != algo {
                assert!(
                    doc["files"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|f| f.get(other).is_none()),
                    "{}: digests labelled {other}",
                    pkg.display()
                );
            }
        }
        compared += 1;
    }
    if compared == 0 {
        assert!(!crate::common::in_ci(), "no real package was compared");
        eprintln!("SKIPPED: no real packages");
        return;
    }
    assert!(compared >= 20, "only {compared} packages compared");
    if crate::common::repo_root()
        .join("../shared/fixtures/real-rpms")
        .is_dir()
    {
        assert!(md5_seen, "no package with MD5 file digests was compared");
    }
}

/// A base tarball with an os-release, a few files, a symlink, and (with
/// `deep`) a file under folders whose path is longer than Linux's 4096-byte
/// `PATH_MAX`.
fn small_base(path: &Path, deep: Option<&str>) {
    let f = std::fs::File::create(path).unwrap();
    let mut tb = tar::Builder::new(f);
    let add_dir = |tb: &mut tar::Builder<std::fs::File>, p: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        tb.append_data(&mut h, p, &[][..]).unwrap();
    };
    let add_file = |tb: &mut tar::Builder<std::fs::File>, p: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        tb.append_data(&mut h, p, data).unwrap();
    };
    for d in ["etc", "usr", "usr/bin", "var"] {
        add_dir(&mut tb, d);
    }
    add_file(
        &mut tb,
        "etc/os-release",
        b"PRETTY_NAME=\"Readers Test\"\n",
        0o644,
    );
    add_file(&mut tb, "usr/bin/tool", &vec![7u8; 100_000], 0o755);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    tb.append_link(&mut h, "bin", "usr/bin").unwrap();
    if let Some(deep) = deep {
        let mut p = String::new();
        for part in deep.split('/') {
            if !p.is_empty() {
                p.push('/');
            }
            p.push_str(part);
            add_dir(&mut tb, &p);
        }
        add_file(&mut tb, &format!("{p}/leaf"), b"at the bottom\n", 0o600);
    }
    tb.into_inner().unwrap();
}

/// Bake `base` into every format; returns the output folder's files.
fn bake_all_formats(dir: &Path, base: &Path) -> Vec<PathBuf> {
    let spec = dir.join("img.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"img\"\nbase = \"{}\"\nformats = [\"raw\", \"vmdk\", \"vhd\", \"tar\"]\n",
            base.display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = output_or_hang(
        ingot()
            .arg("-q")
            .arg("bake")
            .arg(&spec)
            .arg("--out")
            .arg(&out),
    );
    assert!(o.status.success(), "bake: {}", stderr(&o));
    let mut v: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn with_ext(files: &[PathBuf], ext: &str) -> PathBuf {
    files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(ext))
        .cloned()
        .unwrap_or_else(|| panic!("no *{ext} in {files:?}"))
}

fn inspect_json(path: &Path) -> serde_json::Value {
    let o = output_or_hang(ingot().args(["--json", "inspect", "--files"]).arg(path));
    assert!(
        o.status.success(),
        "inspect {}: {}",
        path.display(),
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn inspect_reads_the_raw_vmdk_and_vhd_bake_wrote_and_qemu_img_agrees() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base.tar");
    small_base(&base, None);
    let files = bake_all_formats(t.path(), &base);
    let raw = inspect_json(&with_ext(&files, ".raw"));
    let tool = &raw["files"]["/usr/bin/tool"];
    assert_eq!(tool["size"], 100_000);
    assert_eq!(
        tool["content"],
        hex::encode(Sha256::digest(vec![7u8; 100_000]))
    );
    assert_eq!(raw["os_release"]["PRETTY_NAME"], "Readers Test");
    for ext in [".vmdk", ".vhd"] {
        let other = inspect_json(&with_ext(&files, ext));
        assert!(
            other == raw,
            "inspect of the {ext} differs from the raw image's"
        );
    }
    // A VMDK qemu-img made from the raw image reads the same: the reader
    // follows the format, not ingot's writer.
    let qemu_img = crate::need!("qemu-img");
    let q = t.path().join("q.vmdk");
    crate::common::run_ok(
        Command::new(qemu_img)
            .args([
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
            ])
            .arg(with_ext(&files, ".raw"))
            .arg(&q),
    );
    assert!(inspect_json(&q) == raw, "qemu-img's VMDK reads differently");
    // And diff finds no differences between the containers.
    let o = output_or_hang(
        ingot()
            .arg("diff")
            .arg(with_ext(&files, ".raw"))
            .arg(with_ext(&files, ".vmdk")),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "no differences");
}

#[test]
fn diff_refuses_kinds_it_cannot_compare_naming_both() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base.tar");
    small_base(&base, None);
    let files = bake_all_formats(t.path(), &base);
    let manifest = with_ext(&files, ".manifest.json");
    for (a, b, said) in [
        (
            manifest.clone(),
            with_ext(&files, ".raw"),
            "(a manifest) with `",
        ),
        (
            with_ext(&files, ".vmdk"),
            manifest.clone(),
            "(a VMDK disk image) with `",
        ),
    ] {
        let o = output_or_hang(ingot().arg("diff").arg(&a).arg(&b));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(said), "{err}");
        assert!(
            err.contains("a manifest") && err.contains("disk image"),
            "both kinds named: {err}"
        );
        assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    }
}

#[test]
fn inspect_and_diff_refuse_a_fifo_or_dev_zero() {
    let t = tempfile::tempdir().unwrap();
    let fifo = t.path().join("image.raw");
    mkfifo(&fifo);
    for path in [fifo.as_path(), Path::new("/dev/zero")] {
        let o = output_or_hang(ingot().arg("inspect").arg(path));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
        let o = output_or_hang(ingot().arg("diff").arg(path).arg(path));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    }
}

#[test]
fn inspect_and_diff_read_paths_deeper_than_path_max_that_bake_wrote() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base.tar");
    let part = "d".repeat(250);
    let deep: Vec<&str> = std::iter::repeat_n(part.as_str(), 20).collect();
    let deep = format!("var/{}", deep.join("/"));
    small_base(&base, Some(&deep));
    let files = bake_all_formats(t.path(), &base);
    let leaf = format!("/{deep}/leaf");
    assert!(leaf.len() > 4096);
    let want = hex::encode(Sha256::digest(b"at the bottom\n"));
    let tar = inspect_json(&with_ext(&files, ".tar"));
    assert_eq!(tar["files"][&leaf]["content"], want.as_str());
    for ext in [".raw", ".vmdk", ".vhd"] {
        let doc = inspect_json(&with_ext(&files, ext));
        let f = &doc["files"][&leaf];
        assert_eq!(f["content"], want.as_str(), "{ext}");
        assert_eq!(f["mode"], "0600", "{ext}");
        // The disk and the tarball list the same paths, deep ones included.
        let paths = |d: &serde_json::Value| -> Vec<String> {
            d["files"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.starts_with("/var/"))
                .cloned()
                .collect()
        };
        assert_eq!(paths(&doc), paths(&tar), "{ext}");
    }
    let o = output_or_hang(
        ingot()
            .arg("diff")
            .arg(with_ext(&files, ".raw"))
            .arg(with_ext(&files, ".vhd")),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "no differences");
}

/// The root partition's byte offset, from the manifest bake wrote.
fn root_offset(files: &[PathBuf]) -> u64 {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(with_ext(files, ".manifest.json")).unwrap()).unwrap();
    m["disk"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["number"] == 1)
        .unwrap()["offset"]
        .as_u64()
        .unwrap()
}

#[test]
fn inspect_of_a_disk_agrees_with_debugfs_rdump() {
    let debugfs = crate::need!("debugfs");
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base.tar");
    small_base(&base, Some("var/lib/x/y"));
    let files = bake_all_formats(t.path(), &base);
    let raw = with_ext(&files, ".raw");
    let ours = inspect_json(&raw);
    let dump = t.path().join("dump");
    std::fs::create_dir(&dump).unwrap();
    let dev = format!("{}?offset={}", raw.display(), root_offset(&files));
    crate::common::run_ok(
        Command::new(&debugfs)
            .arg("-R")
            .arg(format!("rdump / {}", dump.display()))
            .arg(&dev),
    );
    let mut theirs = serde_json::Map::new();
    for e in walkdir::WalkDir::new(&dump).min_depth(1) {
        let e = e.unwrap();
        let rel = format!("/{}", e.path().strip_prefix(&dump).unwrap().display());
        let md = std::fs::symlink_metadata(e.path()).unwrap();
        use std::os::unix::fs::MetadataExt;
        let (kind, size, content) = if md.is_dir() {
            ("dir", 0, String::new())
        } else if md.file_type().is_symlink() {
            let t = std::fs::read_link(e.path()).unwrap().display().to_string();
            ("symlink", t.len() as u64, t)
        } else {
            let bytes = std::fs::read(e.path()).unwrap();
            ("file", md.len(), hex::encode(Sha256::digest(&bytes)))
        };
        theirs.insert(
            rel,
            serde_json::json!({
                "kind": kind,
                "mode": format!("{:04o}", md.mode() & 0o7777),
                "uid": md.uid(),
                "gid": md.gid(),
                "size": size,
                "content": content,
            }),
        );
    }
    let mut ours_files = ours["files"].as_object().unwrap().clone();
    ours_files.remove("/");
    // rdump makes folders without their sticky, setuid and setgid bits:
    // those bits of folders are compared with `debugfs stat` below.
    let mut special = Vec::new();
    for (path, f) in ours_files.iter_mut() {
        if f["kind"] == "dir" {
            let mode = u32::from_str_radix(f["mode"].as_str().unwrap(), 8).unwrap();
            if mode & 0o7000 != 0 {
                special.push((path.clone(), mode));
            }
            f["mode"] = format!("{:04o}", mode & 0o777).into();
        }
    }
    assert!(!special.is_empty(), "no folder with a sticky bit (/tmp)");
    for (path, mode) in special {
        let o = crate::common::run_ok(
            Command::new(&debugfs)
                .arg("-R")
                .arg(format!("stat {path}"))
                .arg(&dev),
        );
        let said = stdout(&o);
        assert!(
            said.contains(&format!("Mode:  {mode:05o}")),
            "{path}: {said}"
        );
    }
    let mut keys: Vec<&String> = ours_files.keys().chain(theirs.keys()).collect();
    keys.sort();
    keys.dedup();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| ours_files.get(*k) != theirs.get(*k))
        .map(|k| {
            format!(
                "{k}: ours {:?}, debugfs {:?}",
                ours_files.get(k),
                theirs.get(k)
            )
        })
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(ours_files.len() > 10, "{}", ours_files.len());
}

/// Change the root filesystem of a raw image with `debugfs -w`.
fn debugfs_write(debugfs: &Path, files: &[PathBuf], request: &str) {
    let dev = format!(
        "{}?offset={}",
        with_ext(files, ".raw").display(),
        root_offset(files)
    );
    crate::common::run_ok(Command::new(debugfs).args(["-w", "-R", request]).arg(&dev));
}

#[test]
fn a_directory_cycle_or_an_extent_outside_the_filesystem_is_named() {
    let debugfs = crate::need!("debugfs");
    for (request, said) in [
        // A hard link of a directory to its own parent: a walk by inode
        // would never end.
        ("ln /usr /usr/bin/loop", "a directory cycle"),
        // The first extent of a file pointed far past the end.
        ("sif /usr/bin/tool block[5] 0x7ffffff0", "lies outside the"),
        // An extent tree claiming to be 9 levels deep.
        (
            "sif /usr/bin/tool block[1] 0x00090004",
            "an extent tree node of depth 9",
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base.tar");
        small_base(&base, None);
        let files = bake_all_formats(t.path(), &base);
        debugfs_write(&debugfs, &files, request);
        let o = output_or_hang(
            ingot()
                .arg("inspect")
                .arg("--files")
                .arg(with_ext(&files, ".raw")),
        );
        assert_eq!(o.status.code(), Some(2), "{request}: {}", stderr(&o));
        assert!(stderr(&o).contains(said), "{request}: {}", stderr(&o));
    }
}

#[test]
fn inspect_of_a_hostile_rpm_names_the_header_limit_it_hit() {
    let t = tempfile::tempdir().unwrap();
    let mut lead = vec![0u8; 96];
    lead[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
    for (il, dl, said) in [
        (33u32, 0u32, "33 index entries, over rpm's limit of 32"),
        (
            1,
            64 * 1024 * 1024 + 1,
            "67108865 bytes of data, over rpm's limit of 67108864",
        ),
    ] {
        let mut f = lead.clone();
        f.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
        f.extend_from_slice(&il.to_be_bytes());
        f.extend_from_slice(&dl.to_be_bytes());
        let p = t.path().join("hostile.rpm");
        std::fs::write(&p, &f).unwrap();
        let o = output_or_hang(ingot().arg("inspect").arg(&p));
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(said), "{}", stderr(&o));
    }
}
