//! The image's rpm database reads on a read-only mount, as scanners and
//! auditors read a snapshot: the kernel mounts the baked disk's root
//! partition read-only and real rpm lists and verifies its packages. And
//! rpm still opens it read-write, as on the running server.

use std::path::Path;
use std::process::Command;

use crate::bake::{extract, rpm_in, rpm_out};
use crate::common::{ingot, repo_root, run_ok, stdout};
use crate::ext4::kernel_mount_ro;
use crate::need;

/// The first partition's byte offset, as sfdisk reads the table.
fn partition_1_offset(sfdisk: &Path, raw: &Path) -> u64 {
    let o = run_ok(Command::new(sfdisk).arg("--json").arg(raw));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &j["partitiontable"];
    let sector = t["sectorsize"].as_u64().unwrap_or(512);
    let p1 = t["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"].as_str().is_some_and(|n| n.ends_with('1')))
        .expect("no partition 1");
    p1["start"].as_u64().unwrap() * sector
}

#[test]
fn rpm_reads_the_images_database_on_a_read_only_mount_and_writes_it_on_a_copy() {
    let rpm = need!("rpm");
    let sfdisk = need!("sfdisk");
    need!("tar");
    crate::need_root!("a kernel loop mount");
    let t = tempfile::tempdir().unwrap();
    let spec = t.path().join("image.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"ro\"\nbase = {:?}\npackages = [{:?}]\nformats = [\"raw\", \"tar\"]\n",
            repo_root()
                .join("fixtures/al2023-standin/rootfs.tar.zst")
                .display()
                .to_string(),
            repo_root().join("specs/hello/hello.toml").display().to_string()
        ),
    )
    .unwrap();
    let out = t.path().join("out");
    run_ok(ingot().arg("bake").arg(&spec).arg("--out").arg(&out));
    let find = |ext: &str| {
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == ext))
            .unwrap()
    };
    let (raw, tar) = (find("raw"), find("tar"));

    let mnt = t.path().join("mnt");
    let Some(_mount) = kernel_mount_ro(&raw, partition_1_offset(&sfdisk, &raw), &mnt) else {
        return;
    };
    let db = mnt.join("var/lib/rpm");
    let names: Vec<String> = std::fs::read_dir(&db)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["rpmdb.sqlite"],
        "the image's rpm folder holds {names:?}"
    );
    let ro = rpm_in(&rpm, &mnt).arg("-qa").output().unwrap();
    assert!(
        ro.status.success() && stdout(&ro).contains("hello-1.0.0-1.noarch"),
        "rpm -qa on the read-only mount: {}{}",
        stdout(&ro),
        String::from_utf8_lossy(&ro.stderr)
    );
    let v = rpm_in(&rpm, &mnt)
        .args(["-V", "--nodeps", "--noscripts", "hello"])
        .output()
        .unwrap();
    assert!(
        v.status.success() && v.stdout.is_empty(),
        "rpm -V hello on the read-only mount: {}{}",
        stdout(&v),
        String::from_utf8_lossy(&v.stderr)
    );

    // The same database, writable: rpm installs into it and lists both.
    let root = t.path().join("root");
    extract(&tar, &root);
    let mut listed: Vec<String> = rpm_out(&rpm, &root, &["-qa"])
        .lines()
        .map(String::from)
        .collect();
    let mut on_mount: Vec<String> = stdout(&ro).lines().map(String::from).collect();
    listed.sort();
    on_mount.sort();
    assert_eq!(
        listed, on_mount,
        "the raw image and the tarball list other packages"
    );
    let extra = crate::common::build(
        &repo_root().join("specs/hello/hello.toml"),
        &t.path().join("d2"),
    );
    run_ok(rpm_in(&rpm, &root).args(["-e", "--nodeps", "--noscripts", "hello"]));
    run_ok(
        rpm_in(&rpm, &root)
            .args(["-i", "--nodeps", "--noscripts"])
            .arg(&extra),
    );
    assert!(rpm_out(&rpm, &root, &["-q", "hello"]).contains("hello-1.0.0-1.noarch"));
}

/// A base taken from a live system may hold its last changes in the
/// database's write-ahead log (`rpmdb.sqlite-wal`): they count, and the
/// image's database holds them with no log beside it.
#[test]
fn changes_still_in_the_bases_write_ahead_log_are_kept() {
    let rpm = need!("rpm");
    need!("tar");
    crate::need_root!("extracting the base with its owners");
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("base");
    let tar = t.path().join("base.tar");
    zstd::stream::copy_decode(
        std::fs::File::open(repo_root().join("fixtures/al2023-standin/rootfs.tar.zst")).unwrap(),
        std::fs::File::create(&tar).unwrap(),
    )
    .unwrap();
    extract(&tar, &base);
    assert!(rpm_out(&rpm, &base, &["-qa"]).contains("bash-"));
    // Erase bash's record in WAL mode, and take a copy of the database
    // while the change is still only in the log (as a snapshot of a
    // running system would).
    let work = t.path().join("live");
    std::fs::create_dir_all(&work).unwrap();
    let live = work.join("rpmdb.sqlite");
    std::fs::copy(base.join("var/lib/rpm/rpmdb.sqlite"), &live).unwrap();
    let conn = crate::common::rpmdb_log::erase_into_log(&live, "bash");
    for f in ["rpmdb.sqlite", "rpmdb.sqlite-wal"] {
        std::fs::copy(work.join(f), base.join("var/lib/rpm").join(f)).unwrap();
    }
    drop(conn);

    let spec = t.path().join("image.toml");
    std::fs::write(
        &spec,
        format!(
            "[image]\nname = \"wal\"\nbase = {:?}\npackages = [{:?}]\nformats = [\"tar\"]\n",
            base.display().to_string(),
            repo_root()
                .join("specs/hello/hello.toml")
                .display()
                .to_string()
        ),
    )
    .unwrap();
    let out = t.path().join("out");
    run_ok(
        ingot()
            .arg("bake")
            .arg(&spec)
            .arg("--out")
            .arg(&out)
            .arg("--no-deps-check"),
    );
    let tarball = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "tar"))
        .unwrap();
    let root = t.path().join("root");
    extract(&tarball, &root);
    let names: Vec<String> = std::fs::read_dir(root.join("var/lib/rpm"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("rpmdb"))
        .collect();
    assert_eq!(
        names,
        ["rpmdb.sqlite"],
        "a log from the base reached the image"
    );
    let qa = rpm_out(&rpm, &root, &["-qa"]);
    assert!(
        !qa.contains("bash-"),
        "the erase in the base's log was lost:\n{qa}"
    );
    assert!(qa.contains("hello-1.0.0-1.noarch"), "{qa}");
}
