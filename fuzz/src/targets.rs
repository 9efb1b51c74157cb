//! The targets: each takes the fuzzer's bytes to one of the library's
//! public entry points for untrusted input and uses what comes back the
//! way the library's callers do. Errors are dropped: refusing the input
//! is a fine answer; panics are not.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ingot::disk::view::{self, DiskRead};
use ingot::fsread::ext4::{self, Ext4ReadError, Fs};
use ingot::rpm::header::{Header, Limits, tag};

use crate::READ_CAP;

/// A spec's path beside the committed example, so the sources it names
/// (`hello-server`, `hello.service`, ...) resolve to real files.
fn spec_path(rel: &str) -> PathBuf {
    crate::repo_root().join("specs").join(rel)
}

pub fn package_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = ingot::spec::package::parse_package(&spec_path("hello/fuzz.toml"), text) {
        let _ = (spec.nvra(), spec.evr());
    }
}

pub fn image_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ingot::spec::image::parse_image(&spec_path("fuzz-image.toml"), text);
}

pub fn dep(data: &[u8]) {
    use ingot::spec::dep::{self, Dependency};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = dep::check_evr(text, 0);
    let Ok(d) = dep::parse(text) else {
        return;
    };
    let shown = d.to_string();
    let _ = (d.name(), d.is_rich());
    if let Dependency::Rich { expr, .. } = &d {
        let _ = expr.simples();
        let _ = dep::check_rich_context(expr, false);
        let _ = dep::check_rich_context(expr, true);
        let _ = ingot::rpmdb::index::rich_names(&shown);
    }
    // What a dependency prints as is what rpm's header gets: it parses.
    assert!(
        dep::parse(&shown).is_ok(),
        "`{text}` parses but its text `{shown}` does not"
    );
}

/// Every read a caller makes of a parsed header.
fn use_header(h: &Header) {
    for e in h.entries() {
        let _ = (h.get(e.tag), h.string(e.tag), h.strings(e.tag));
        let _ = (h.ints(e.tag), h.int(e.tag), h.bin(e.tag));
    }
    let _ = (h.region_len(), h.with_magic());
    if let Ok(region) = h.region_blob() {
        // The region alone is a header too.
        Header::from_blob(region).expect("a header's region does not parse");
    }
}

/// What install and inspect take from a package's headers.
fn use_package(sig: &Header, h: &Header) {
    use ingot::install::deps;
    let _ = ingot::install::package_of(h);
    let _ = ingot::install::files::files_of(h);
    let _ = deps::check_header(h);
    let _ = ingot::rpmdb::index::rows(h);
    let pkgs = [deps::Package::from_header(h)];
    let u = deps::Universe::new(&pkgs);
    let _ = (u.unmet(&[0]), u.conflicts(&[0]));
    for c in &pkgs[0].requires {
        let _ = u.is_met(c);
    }
    if let Ok(record) = ingot::rpmdb::record::installed_record(sig, h, 1_700_000_000) {
        // What install writes to the database, rpm (and ingot) must read.
        Header::from_blob(record).expect("an installed record does not parse");
    }
}

pub fn rpm_header(data: &[u8]) {
    if let Ok(p) = ingot::rpm::read::PackageHeaders::read(&mut &data[..]) {
        use_header(&p.signature);
        use_header(&p.header);
        use_package(&p.signature, &p.header);
    }
    for limits in [Limits::SIGNATURE, Limits::HEADER] {
        if let Ok(h) = Header::read_with_magic_limited(&mut &data[..], limits) {
            use_header(&h);
        }
    }
    if let Ok(h) = Header::from_blob(data.to_vec()) {
        use_header(&h);
        // An rpm database record read back (inspect, the dependency check).
        let _ = ingot::install::package_of(&h);
        let _ = h.string(tag::NAME);
    }
}

pub fn rpm_payload(data: &[u8]) {
    let mut cpio = ingot::install::cpio::CpioReader::new(data);
    // An odd length stands for a header that declares half the payload.
    if data.len() % 2 == 1 {
        cpio.set_max_bytes(data.len() as u64 / 2);
    }
    let mut n = 0u64;
    // A stripped entry's size comes from the header: any function will do.
    while let Ok(Some(e)) = cpio.next_entry(|i| (i < 1 << 20).then_some(u64::from(i) * 3)) {
        n += 1;
        // Read every other member; the reader skips the rest itself.
        if n.is_multiple_of(2) && io::copy(&mut cpio.data(), &mut io::sink()).is_err() {
            break;
        }
        let _ = e;
    }
}

/// The scratch folder, once made.
static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();

/// A folder of this process for scratch files, under `TMPDIR` (made again
/// if [`remove_scratch`] took it away).
fn scratch() -> &'static Path {
    let dir = SCRATCH
        .get_or_init(|| {
            tempfile::Builder::new()
                .prefix("ingot-fuzz-")
                .tempdir()
                .expect("cannot make a scratch folder")
        })
        .path();
    std::fs::create_dir_all(dir).expect("cannot make the scratch folder again");
    dir
}

/// Remove the scratch folder (and say which it was): a static is never dropped, so a process
/// that ran the `tar` target (the tests) removes it when done.
pub fn remove_scratch() -> Option<&'static Path> {
    let d = SCRATCH.get()?.path();
    let _ = std::fs::remove_dir_all(d);
    Some(d)
}

/// Read at most [`READ_CAP`] bytes from `r`.
fn read_capped(r: impl Read) {
    let _ = io::copy(&mut r.take(READ_CAP), &mut io::sink());
}

pub fn tar(data: &[u8]) {
    let magics: [&[u8]; 4] = [
        &[0x1f, 0x8b],
        b"\xfd7zXZ\0",
        &[0x28, 0xb5, 0x2f, 0xfd],
        b"BZh",
    ];
    if magics.iter().any(|m| data.starts_with(m)) {
        return; // compressed: see the crate doc
    }
    let mut data = data.to_vec();
    crate::fixup::tar(&mut data);
    let path = scratch().join("input.tar");
    std::fs::write(&path, &data).expect("cannot write the scratch tarball");
    let mut tree = ingot::rootfs::Tree::with_spill_dir(scratch());
    if tree.import_tar(&path).is_err() {
        return;
    }
    for (_, id) in tree.walk() {
        if matches!(tree.node(id).kind, ingot::rootfs::Kind::File(_))
            && let Ok(r) = tree.open(id)
        {
            read_capped(r);
        }
    }
    let _ = tree.resolve("/etc/os-release", true);
}

/// Walk an ext4 filesystem as inspect does, reading each file's first
/// [`READ_CAP`] bytes.
fn use_ext4(mut fs: Fs) {
    let Ok(found) = ext4::walk(&mut fs) else {
        return;
    };
    for f in found.values() {
        let i = &f.inode;
        let _ = (i.is_dir(), i.is_symlink(), i.device(), i.file_type());
        if i.is_file() {
            let mut left = READ_CAP;
            let _ = fs.read_data(i, |b| {
                left = left.saturating_sub(b.len() as u64);
                if left == 0 {
                    return Err(Ext4ReadError::Corrupt("read cap".into()));
                }
                Ok(())
            });
        }
    }
    for path in found.keys() {
        let _ = ext4::resolve(&found, path);
    }
    let _ = ext4::resolve(&found, b"/etc/os-release");
}

pub fn disk(data: &[u8]) {
    let Ok(file) = crate::sparse::decode(data) else {
        return;
    };
    crate::fixup::disk(&file);
    let Ok(Some(format)) = view::detect(&file) else {
        return;
    };
    if let Ok(disk) = view::open(file, format) {
        use_disk(disk);
    }
}

/// A Compute Engine tarball, as its bytes (a gzip stream is not sparse):
/// its tar header and sparse map as `disk::view` reads them, then the
/// disk inside as [`disk`] uses it.
pub fn gce(data: &[u8]) {
    use std::os::unix::fs::FileExt;
    let Ok(file) = crate::sparse::memfd() else {
        return;
    };
    if file.write_all_at(data, 0).is_err() {
        return;
    }
    if !matches!(view::detect(&file), Ok(Some(view::DiskFormat::Gce))) {
        return;
    }
    if let Ok(disk) = view::open(file, view::DiskFormat::Gce) {
        use_disk(disk);
    }
}

/// Read an opened disk as `inspect` does: sectors across it, its GPT,
/// then its ext4 root partition.
fn use_disk(mut disk: Box<dyn DiskRead>) {
    // Sectors spread over the disk: the grains or clusters behind them.
    let size = disk.size();
    let mut sector = [0u8; 512];
    for k in 0..8 {
        let at = (size / 8 * k) & !511;
        let _ = disk.read_at(&mut sector, at);
    }
    let Ok(table) = ingot::disk::gpt::read_disk(&mut *disk) else {
        return;
    };
    for p in &table.partitions {
        let _ = disk.read_at(&mut sector, p.offset());
    }
    if let Some(root) = table
        .partitions
        .iter()
        .find(|p| p.type_guid == ingot::disk::gpt::TYPE_LINUX)
        && let Ok(fs) = Fs::open(disk, root.offset(), root.size())
    {
        use_ext4(fs);
    }
}

pub fn ext4(data: &[u8]) {
    let Ok(file) = crate::sparse::decode(data) else {
        return;
    };
    let Ok(view) = view::RawView::new(file) else {
        return;
    };
    let size = view.size();
    if let Ok(fs) = Fs::open(Box::new(view), 0, size) {
        use_ext4(fs);
    }
}

/// A bare XFS filesystem (`fsread::xfs::Fs::open`), walked through the
/// `ReadFs` seam as a base import walks it: every directory, inode,
/// attribute set and symlink, and up to [`READ_CAP`] bytes of each file.
pub fn xfs(data: &[u8]) {
    let Ok(file) = crate::sparse::decode(data) else {
        return;
    };
    crate::fixup::xfs(&file);
    let Ok(view) = view::RawView::new(file) else {
        return;
    };
    let size = view.size();
    if let Ok(fs) = ingot::fsread::xfs::Fs::open(Box::new(view), 0, size) {
        use_fs(fs);
    }
}

/// Walk `fs` as `fsread::image` does, each directory once.
fn use_fs(mut fs: impl ingot::fsread::ReadFs) {
    use ingot::fsread::FileType;
    let root = fs.root_ino();
    let mut seen = std::collections::HashSet::from([root]);
    let mut todo = vec![root];
    let mut paths = 0usize;
    let _ = fs.ids();
    while let Some(ino) = todo.pop() {
        let Ok(entries) = fs.read_dir(ino) else {
            continue;
        };
        for (_, child) in entries {
            paths += 1;
            if paths > 1 << 16 {
                return;
            }
            let Ok(st) = fs.stat(child) else {
                continue;
            };
            let _ = fs.xattrs(child);
            match st.kind {
                FileType::Dir if seen.insert(child) => todo.push(child),
                FileType::Symlink => {
                    let _ = fs.link_target(child);
                }
                FileType::File => {
                    let Ok(map) = fs.file_map(child) else {
                        continue;
                    };
                    let mut left = READ_CAP;
                    let mut buf = vec![0u8; 64 * 1024];
                    for m in map {
                        let n = m.len.min(left).min(buf.len() as u64) as usize;
                        if n == 0 || fs.disk().read_at(&mut buf[..n], m.disk_offset).is_err() {
                            break;
                        }
                        left -= n as u64;
                    }
                }
                _ => {}
            }
        }
    }
}

/// The parsers of what a repository or a user's checkout hands over: the
/// first byte picks one (`repomd.xml`, `primary.xml`, `filelists.xml`, a
/// metalink, a `.repo` file, a lock file, OpenPGP keys), the rest is its
/// input. Each result is used as the resolver and the lock use it.
pub fn repo_metadata(data: &[u8]) {
    use ingot::repo::{Limits as RepoLimits, xml};
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let limits = RepoLimits::default();
    let what = "fuzz";
    let text = String::from_utf8_lossy(rest);
    match which % 7 {
        0 => {
            if let Ok(r) = xml::parse_repomd(rest, what, &limits) {
                let _ = r.record("primary").map(|p| p.location.len());
            }
        }
        1 => {
            let mut alone = Vec::new();
            let one = xml::read_primary(rest, what, &limits, |p| {
                let _ = (p.nevra(), p.evr());
                for d in p.provides.iter().chain(&p.requires).chain(&p.conflicts) {
                    let _ = d.to_string();
                }
                alone.push(p);
                Ok(())
            });
            // Read in pieces (cut at the last `<package`; each read by
            // hand when plain, else by quick-xml), the answer is the one
            // reader's: the same packages, or the same error.
            let bytes = rest.to_vec();
            let open = move || -> ingot::repo::Result<Box<dyn std::io::Read + Send>> {
                Ok(Box::new(std::io::Cursor::new(bytes.clone())))
            };
            let mut pieces = Vec::new();
            let two = ingot::repo::pieces::read_primary(&open, what, &limits, 1, &mut |p| {
                pieces.push(p);
                Ok(())
            });
            // The whole document read by hand as one piece: quick-xml's
            // packages, or handed back; never read where quick-xml refuses.
            if let Some(by_hand) = ingot::repo::scan::primary(rest, what, &limits) {
                assert!(
                    one.is_ok() && by_hand == alone,
                    "primary read by hand differs"
                );
            }
            match (one, two) {
                (Ok(a), Ok(b)) => assert!(a == b && alone == pieces, "pieces differ"),
                (Err(a), Err(b)) => {
                    assert_eq!(a.to_string(), b.to_string());
                    assert!(alone == pieces, "pieces differ before the error");
                }
                (a, b) => panic!("one reader: {a:?}; in pieces: {b:?}"),
            }
        }
        2 => {
            let _ = xml::read_filelists(rest, what, &limits, |f| {
                let _ = (f.pkgid.len(), f.files.len());
                Ok(())
            });
            let wanted = |p: &str| p.starts_with("/usr/bin/");
            let mut found = Vec::new();
            let slow = xml::filelists_matching(rest, what, &limits, wanted, |id, p| {
                found.push((id.to_string(), p.to_string()));
                Ok(())
            });
            // Read by hand (pieces of 1 MiB), the answer is quick-xml's,
            // or none at all; never one where quick-xml refuses.
            if let Some((n, fast)) =
                ingot::repo::scan::filelists_matching(rest, what, &limits, &wanted)
            {
                match slow {
                    Ok(m) => assert!(m == n && fast == found, "filelists read by hand differ"),
                    Err(e) => panic!("read by hand, refused by quick-xml: {e}"),
                }
            }
        }
        3 => {
            if let Ok(m) = ingot::repo::metalink::parse(rest, what, &limits) {
                let _ = m.matches(b"<repomd/>");
            }
        }
        4 => {
            let vars = ingot::repo::Vars::new("2023", "x86_64");
            let defaults = ingot::repo::config::Defaults {
                gpgcheck: true,
                repo_gpgcheck: false,
            };
            let path = Path::new("/etc/yum.repos.d/fuzz.repo");
            if let Ok(repos) =
                ingot::repo::config::parse_repo_file(path, &text, &vars, None, defaults)
            {
                for r in repos {
                    let _ = (r.source_key(), vars.substitute(&r.name));
                }
            }
        }
        5 => {
            if let Ok(l) = ingot::lock::Lock::parse(Path::new("fuzz.lock"), &text) {
                let _ = l.to_text();
                for p in &l.packages {
                    let _ = (p.nevra(), p.evr());
                }
            }
        }
        _ => {
            let _ = ingot::repo::Keyring::from_armored(&[("fuzz".into(), rest.to_vec())]);
        }
    }
}
