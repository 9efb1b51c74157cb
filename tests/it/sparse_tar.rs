//! A sparse file stays sparse in the `tar` output: a base tarball holding a
//! 1 TiB file with a few bytes of data (made by GNU tar `--sparse`) bakes
//! to a small tarball that GNU tar lists with the real size and extracts
//! with `--sparse` to a sparse file with the same content; a file with only
//! a little zero data stays a plain member.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::common::{ingot, run_ok, stdout};
use crate::need;
use crate::outputs::{letters, listing};

const TIB: u64 = 1 << 40;

/// The data regions of a file, from `SEEK_DATA`/`SEEK_HOLE` (asked here,
/// not through ingot's own reader of them).
fn data_regions(f: &File) -> Vec<(u64, u64)> {
    use rustix::fs::{SeekFrom, seek};
    let size = f.metadata().unwrap().len();
    let mut v = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let Ok(data) = seek(f, SeekFrom::Data(pos)) else {
            break; // ENXIO: only a hole to the end
        };
        let hole = seek(f, SeekFrom::Hole(data)).expect("SEEK_HOLE");
        assert!(hole > data, "SEEK_HOLE failed");
        v.push((data, hole));
        pos = hole;
    }
    v
}

/// Whether two files of one size have the same bytes: everywhere either
/// holds data, compared; everywhere else both are holes (zeros).
fn same_sparse_content(a: &Path, b: &Path) {
    let (fa, fb) = (File::open(a).unwrap(), File::open(b).unwrap());
    assert_eq!(fa.metadata().unwrap().len(), fb.metadata().unwrap().len());
    let mut regions = data_regions(&fa);
    regions.extend(data_regions(&fb));
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    for (start, end) in regions {
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(ba.len());
            fa.read_exact_at(&mut ba[..n], at).unwrap();
            fb.read_exact_at(&mut bb[..n], at).unwrap();
            assert!(ba[..n] == bb[..n], "contents differ at byte {at}");
            at += n as u64;
        }
    }
}

fn allocated(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().blocks() * 512
}

#[test]
fn a_one_tib_sparse_file_stays_sparse_in_the_tar_output() {
    let gnu_tar = need!("tar");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("data")).unwrap();
    let big = root.join("data/big");
    {
        let f = File::create(&big).unwrap();
        f.set_len(TIB).unwrap();
        f.write_all_at(b"start", 0).unwrap();
        f.write_all_at(&letters(7, 1 << 20), 512 << 30).unwrap();
        f.write_all_at(b"end", TIB - 3).unwrap();
    }
    // 8 KiB with a zero block: a plain member, as before.
    let mut small = letters(8, 8192);
    small[..4096].fill(0);
    std::fs::write(root.join("data/small"), &small).unwrap();
    run_ok(
        Command::new(&gnu_tar)
            .args(["--sparse", "--format=pax", "-cf"])
            .arg(dir.join("base.tar"))
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    std::fs::write(
        dir.join("image.toml"),
        "[image]\nname = \"sparse\"\nbase = \"base.tar\"\nformats = [\"tar\"]\n",
    )
    .unwrap();
    let bake = |out: &Path| {
        let mut cmd = ingot();
        cmd.arg("bake")
            .arg(dir.join("image.toml"))
            .arg("--out")
            .arg(out);
        // Should the zeros be written after all, the bake fails at 256 MiB
        // instead of filling the disk.
        // SAFETY: setrlimit and signal are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 256 << 20,
                    rlim_max: 256 << 20,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        run_ok(&mut cmd);
        let names = listing(out);
        out.join(names.iter().find(|n| n.ends_with(".tar")).unwrap())
    };
    let tar = bake(&dir.join("out"));
    let tar_size = std::fs::metadata(&tar).unwrap().len();
    assert!(tar_size < 8 << 20, "the tar output is {tar_size} bytes");
    let tar2 = bake(&dir.join("again"));
    assert!(
        std::fs::read(&tar).unwrap() == std::fs::read(&tar2).unwrap(),
        "two bakes gave two tarballs"
    );

    // GNU tar lists the real size under the real name...
    let list = stdout(&run_ok(Command::new(&gnu_tar).arg("-tvf").arg(&tar)));
    let line = list
        .lines()
        .find(|l| l.ends_with(" ./data/big"))
        .unwrap_or_else(|| panic!("no ./data/big in\n{list}"));
    assert!(line.contains(&format!(" {TIB} ")), "{line}");
    // ...and extracts a sparse file with the same bytes.
    let x = dir.join("x");
    std::fs::create_dir(&x).unwrap();
    run_ok(
        Command::new(&gnu_tar)
            .args(["--sparse", "-xf"])
            .arg(&tar)
            .arg("-C")
            .arg(&x),
    );
    let got = x.join("data/big");
    assert_eq!(std::fs::metadata(&got).unwrap().len(), TIB);
    assert!(
        allocated(&got) < 16 << 20,
        "extracted, it takes {} bytes",
        allocated(&got)
    );
    same_sparse_content(&big, &got);
    assert_eq!(std::fs::read(x.join("data/small")).unwrap(), small);

    // The small file is a plain member under its own name.
    let mut a = tar::Archive::new(File::open(&tar).unwrap());
    let plain = a
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path_bytes().as_ref() == b"./data/small")
        .expect("./data/small is not a plain member");
    assert_eq!(plain.header().entry_type(), tar::EntryType::Regular);
    assert_eq!(plain.header().size().unwrap(), 8192);
}
