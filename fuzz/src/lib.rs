//! Fuzz targets for ingot's parsers of untrusted input, and the seeds
//! they start from. `cargo xtask fuzz` runs them under AFL++; `cargo test`
//! runs each over its seeds and its committed regression inputs once.
//!
//! In: bytes. Out: nothing; a target passes when the library returns (an
//! error is a fine answer) and fails by panicking, overflowing the stack,
//! running past AFL++'s time limit or allocating past its memory limit.
//!
//! | target | what it reads, through the library's public entry points |
//! | --- | --- |
//! | `package_spec` | a package spec's text (`spec::package::parse_package`), sources resolved beside `specs/hello/hello.toml` |
//! | `image_spec` | an image spec's text (`spec::image::parse_image`), beside `specs/hello-image.toml` |
//! | `dep` | one dependency string (`spec::dep::parse`), then the checks and the text of what parsed |
//! | `rpm_header` | the bytes as a package (lead, signature header, header: `rpm::read::PackageHeaders::read`), as a bare header with magic under both limits (`Header::read_with_magic_limited`), and as an rpm database blob (`Header::from_blob`); every tag decoded, the file list, dependencies and install-time record built from what parsed |
//! | `rpm_payload` | an uncompressed cpio payload (`install::cpio::CpioReader`), every member's data read or skipped |
//! | `tar` | an uncompressed tarball imported as a base (`rootfs::Tree::import_tar`), then every file read back |
//! | `disk` | a disk image (`disk::view::detect`/`open`: raw, fixed VHD, stream-optimized VMDK), its GPT (`disk::gpt::read_disk`) and, as `inspect` does, the ext4 root partition |
//! | `ext4` | a bare ext4 filesystem (`fsread::ext4::Fs::open`, `walk`, `read_data`, `resolve`) |
//! | `xfs` | a bare XFS v5 filesystem (`fsread::xfs::Fs::open`), walked through `fsread::ReadFs` as a base import walks it: directories, inodes, xattrs, symlinks, file extents |
//! | `repo_metadata` | the first byte picks a parser, the rest is its input: `repomd.xml` (`repo::xml::parse_repomd`), `primary.xml` (`read_primary`, and `repo::pieces::read_primary` against it), `filelists.xml` (`read_filelists`, `filelists_matching`), a metalink (`repo::metalink::parse`), a `.repo` file (`repo::config::parse_repo_file`), a lock file (`lock::Lock::parse`), OpenPGP keys (`repo::Keyring::from_armored`) |
//!
//! Inspect reads no FAT (the ESP is never opened when reading an image
//! back), so there is no FAT target. Compressed tarballs and payloads are
//! not fuzzed: their decompressors are other crates' (flate2, liblzma,
//! zstd, bzip2), and what ingot adds on top (the member readers) is the
//! same code the uncompressed targets reach.
//!
//! Disk images are big and mostly zeros, so the `disk`, `ext4` and `xfs` targets
//! read their input as a sparse image ([`sparse`]): a size, then runs of
//! sectors at their places. Both run the image through the library from a
//! `memfd`, so nothing touches the disk. The `tar` target writes its input
//! to a scratch file (the importer references a plain archive's members in
//! place, by path), in the folder `TMPDIR` names; `cargo xtask fuzz` points
//! that under `target/fuzz/`.
//!
//! Checksums a mutation breaks but a forger would set (tar headers, GPT
//! headers and entries, the VHD footer) are set right first
//! ([`fixup`]), so mutants get past them to the code behind.
//!
//! Reads of file contents in `disk`, `ext4` and `tar` stop after
//! [`READ_CAP`] bytes per file: a file may rightly claim terabytes of holes
//! (ext4 and tar both hold sparse files), and streaming them whole is
//! inspect's job, not a parser's bug. Everything up to the contents
//! (superblock, groups, inodes, extent trees, directories, symlinks,
//! headers, sparse maps) is read in full.
//!
//! Why AFL++ through cargo-afl: ingot must build with the stable toolchain
//! only, and cargo-fuzz (libFuzzer) needs nightly's `-Z` flags. cargo-afl
//! instruments with stable `-C passes=sancov-module` and links AFL++'s
//! runtime, which it builds from the AFL++ sources it ships (so it needs
//! only `make` and a C compiler: Debian's `build-essential`). AFL++'s own
//! `afl-fuzz` from that build runs the targets: Debian 12's `afl++`
//! package is an older AFL++ (4.04c) whose fork server need not match the
//! runtime cargo-afl links, so it is not used. `arbitrary`-driven
//! generators without coverage feedback were the other option; AFL++'s
//! feedback reaches much deeper into binary formats such as headers and
//! extent trees.

pub mod fixup;
pub mod seeds;
pub mod sparse;
pub mod targets;

/// The most bytes of one file's contents a target reads.
pub const READ_CAP: u64 = 1 << 20;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "package_spec",
        run: targets::package_spec,
    },
    Target {
        name: "image_spec",
        run: targets::image_spec,
    },
    Target {
        name: "dep",
        run: targets::dep,
    },
    Target {
        name: "rpm_header",
        run: targets::rpm_header,
    },
    Target {
        name: "rpm_payload",
        run: targets::rpm_payload,
    },
    Target {
        name: "tar",
        run: targets::tar,
    },
    Target {
        name: "disk",
        run: targets::disk,
    },
    Target {
        name: "gce",
        run: targets::gce,
    },
    Target {
        name: "ext4",
        run: targets::ext4,
    },
    Target {
        name: "xfs",
        run: targets::xfs,
    },
    Target {
        name: "repo_metadata",
        run: targets::repo_metadata,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The repository's root (the fuzz crate sits in `fuzz/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

/// The committed inputs that once crashed a target (see
/// `fuzz/regressions/README.md`): run with the seeds by the tests.
pub fn regressions(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("fuzz/regressions").join(name);
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file()
                && let Ok(b) = std::fs::read(&p)
            {
                out.push((e.file_name().to_string_lossy().into_owned(), b));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    /// Each `repo_metadata` seed parses with what its first byte picks.
    fn repo_metadata_seeds_are_accepted() {
        use ingot::repo::{Limits, metalink, xml};
        let limits = Limits::default();
        for (n, s) in super::seeds::seeds("repo_metadata") {
            let body = &s[1..];
            let text = String::from_utf8(body.to_vec()).unwrap();
            let ok = match s[0] {
                0 => {
                    xml::parse_repomd(body, &n, &limits)
                        .map(|r| r.records.len())
                        .unwrap_or(0)
                        >= 3
                }
                1 => xml::read_primary(body, &n, &limits, |_| Ok(())).unwrap() == 1,
                2 => xml::read_filelists(body, &n, &limits, |_| Ok(())).unwrap() == 1,
                3 => {
                    let m = metalink::parse(body, &n, &limits).unwrap();
                    m.urls.len() == 2 && m.hashes.len() == 2
                }
                4 => {
                    let vars = ingot::repo::Vars::new("2023", "x86_64");
                    let d = ingot::repo::config::Defaults {
                        gpgcheck: true,
                        repo_gpgcheck: false,
                    };
                    let path = std::path::Path::new("fuzz.repo");
                    ingot::repo::config::parse_repo_file(path, &text, &vars, None, d)
                        .unwrap()
                        .len()
                        == 2
                }
                5 => !ingot::lock::Lock::parse(std::path::Path::new("x.lock"), &text)
                    .unwrap()
                    .packages
                    .is_empty(),
                _ => false,
            };
            assert!(ok, "{n} is not taken as it should be");
        }
    }

    /// Every target over its seeds and the inputs that once crashed it:
    /// what `cargo xtask ci` runs of the fuzzers (no AFL++, no time).
    #[test]
    fn every_target_runs_its_seeds_and_regressions() {
        for t in super::TARGETS {
            let seeds = super::seeds::seeds(t.name);
            assert!(!seeds.is_empty(), "`{}` has no seeds", t.name);
            for (name, data) in seeds.iter().chain(&super::regressions(t.name)) {
                eprintln!("{}: {name} ({} bytes)", t.name, data.len());
                (t.run)(data);
            }
        }
        let scratch = super::targets::remove_scratch().expect("the tar target made its folder");
        assert!(!scratch.exists(), "{} is left behind", scratch.display());
    }

    /// The seeds are inputs the library accepts, so fuzzing starts deep
    /// inside each format rather than at its first check.
    #[test]
    fn the_seeds_are_accepted_by_the_library() {
        use ingot::disk::{gpt, view};
        use ingot::fsread::ext4;
        let repo = super::repo_root();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        for (n, s) in super::seeds::seeds("package_spec") {
            let file = repo.join("specs/hello/fuzz.toml");
            let r = ingot::spec::package::parse_package(&file, &text(&s));
            assert!(r.is_ok(), "{n}: {r:?}");
        }
        for (n, s) in super::seeds::seeds("image_spec") {
            let file = repo.join("specs/fuzz-image.toml");
            let r = ingot::spec::image::parse_image(&file, &text(&s));
            assert!(r.is_ok(), "{n}: {r:?}");
        }
        for (n, s) in super::seeds::seeds("dep") {
            assert!(ingot::spec::dep::parse(&text(&s)).is_ok(), "{n}");
        }
        let (_, pkg) = &super::seeds::seeds("rpm_header")[0];
        ingot::rpm::read::PackageHeaders::read(&mut &pkg[..]).unwrap();
        for (n, s) in super::seeds::seeds("rpm_payload") {
            let mut c = ingot::install::cpio::CpioReader::new(&s[..]);
            while c.next_entry(|i| Some(u64::from(i) * 3)).unwrap().is_some() {}
            eprintln!("{n}: read to its trailer");
        }
        let dir = tempfile::tempdir().unwrap();
        for (n, s) in super::seeds::seeds("tar") {
            let p = dir.path().join(&n);
            std::fs::write(&p, &s).unwrap();
            let mut tree = ingot::rootfs::Tree::new();
            tree.import_tar(&p).unwrap();
            assert!(tree.walk().count() > 10, "{n}");
        }
        for (n, s) in super::seeds::seeds("ext4") {
            let v = view::RawView::new(super::sparse::decode(&s).unwrap()).unwrap();
            let size = view::DiskRead::size(&v);
            let mut fs = ext4::Fs::open(Box::new(v), 0, size).unwrap();
            assert!(ext4::walk(&mut fs).unwrap().len() > 80, "{n}");
        }
        repo_metadata_seeds_are_accepted();
        for (n, s) in super::seeds::seeds("xfs") {
            use ingot::fsread::ReadFs;
            let v = view::RawView::new(super::sparse::decode(&s).unwrap()).unwrap();
            let size = view::DiskRead::size(&v);
            let mut fs = ingot::fsread::xfs::Fs::open(Box::new(v), 0, size).unwrap();
            let root = fs.root_ino();
            let names: Vec<Vec<u8>> = fs
                .read_dir(root)
                .unwrap()
                .into_iter()
                .map(|e| e.0)
                .collect();
            assert!(names.iter().any(|n| n == b"big"), "{n}: {names:?}");
            for (name, ino) in fs.read_dir(root).unwrap() {
                if name == b"big" {
                    assert_eq!(fs.read_dir(ino).unwrap().len(), 150, "{n}");
                }
                if name == b"long" {
                    assert_eq!(fs.link_target(ino).unwrap().len(), 300, "{n}");
                }
            }
        }
        let disks = super::seeds::seeds("disk").into_iter().map(|(n, s)| {
            let f = super::sparse::decode(&s).unwrap();
            (n, f)
        });
        let gce = super::seeds::seeds("gce").into_iter().map(|(n, s)| {
            let f = super::sparse::memfd().unwrap();
            std::os::unix::fs::FileExt::write_all_at(&f, &s, 0).unwrap();
            (n, f)
        });
        let mut formats = std::collections::BTreeSet::new();
        for (n, f) in disks.chain(gce) {
            let format = view::detect(&f).unwrap().unwrap();
            formats.insert(format!("{format:?}"));
            let mut d = view::open(f, format).unwrap();
            let t = gpt::read_disk(&mut *d).unwrap();
            let root = t.partitions.iter().find(|p| p.type_guid == gpt::TYPE_LINUX);
            let root = root.unwrap_or_else(|| panic!("{n}: no root partition"));
            let mut fs = ext4::Fs::open(d, root.offset(), root.size()).unwrap();
            assert!(ext4::walk(&mut fs).unwrap().len() > 10, "{n}");
        }
        // Every disk format `inspect` reads has a seed.
        assert_eq!(formats.len(), 5, "{formats:?}");
    }
}
