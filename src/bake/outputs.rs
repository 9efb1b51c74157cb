//! Stage 6 of `bake`: write the outputs. The tarball from the tree; the
//! raw disk (laid out by [`layout`](super::layout)) with its root
//! filesystem written on a thread of its own while this one reads the
//! image behind it, once, for its SHA-256, the EBS checksum and every
//! other disk format ([`crate::disk::format`]: the pass names none of them).
//!
//! In: the finished tree, the formats asked for, the seed and the source
//! date, the staging area. Out: [`Outputs`]: each output under its
//! temporary name with its digest (the main one first: the raw image when
//! a disk is asked for, else the tarball), and the disk's facts for the
//! manifest. Progress: the root filesystem as its watermark rises, the
//! pass over the image, and each output until it is finished.

use std::io::{BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::layout;
use super::{BakeError, Result};
use super::{BakeOptions, Hashing, Reporter};
use crate::disk::format::{Context, ImageFormat, RawDone, RawStream};
use crate::disk::{OutputFormat, raw::Watermark};
use crate::filesystem::FilesystemKind;
use crate::fsread::image::BiosBoot;
use crate::manifest;
use crate::output::Staging;
use crate::progress::{Counted, Task, Unit};
use crate::rootfs::Tree;
use crate::spec::image::ImageSpec;

/// What stage 6 wrote.
pub(super) struct Outputs {
    /// In order, the main output first; `file` is the temporary name.
    pub list: Vec<manifest::Output>,
    /// The disk's facts, when a disk was made.
    pub disk: Option<DiskFacts>,
}

pub(super) struct DiskFacts {
    pub disk: manifest::Disk,
    pub ebs: manifest::Ebs,
    pub register: manifest::RegisterImage,
}

/// The temporary name of `format`'s output (renamed once the main
/// output's digest is known).
fn temporary(spec: &ImageSpec, format: OutputFormat) -> String {
    format!("{}.{}", spec.name, format.extension())
}

/// Write every output `formats` names.
#[allow(clippy::too_many_arguments)]
pub(super) fn write(
    tree: &mut Tree,
    spec: &ImageSpec,
    formats: &[OutputFormat],
    seed: &mut dyn FnMut() -> Result<[u8; 32]>,
    time: u32,
    staging: &mut Staging,
    opts: &BakeOptions,
    progress: &dyn Reporter,
    warnings: &mut Vec<String>,
    bios: Option<&BiosBoot>,
) -> Result<Outputs> {
    // The tarball first: it is the tree as installed, before the disk
    // adds its fstab and moves `/boot/efi` onto the ESP.
    let tar = match formats.contains(&OutputFormat::Tar) {
        true => Some(write_tar(tree, spec, staging, opts, progress)?),
        false => None,
    };
    let mut list = Vec::new();
    let mut disk = None;
    if formats.iter().any(|f| f.is_disk()) {
        let seed = seed()?;
        let (outputs, facts) = write_disk(
            tree, spec, formats, &seed, time, staging, opts, progress, warnings, bios,
        )?;
        list.extend(outputs);
        disk = Some(facts);
    }
    list.extend(tar);
    Ok(Outputs { list, disk })
}

fn write_tar(
    tree: &Tree,
    spec: &ImageSpec,
    staging: &mut Staging,
    opts: &BakeOptions,
    progress: &dyn Reporter,
) -> Result<manifest::Output> {
    progress.step("writing the tarball");
    let tmp = temporary(spec, OutputFormat::Tar);
    let f = staging.create(&tmp)?;
    let task = Task::start(progress, &format!("writing {tmp}"), Unit::Bytes, None);
    let mut w = Hashing {
        inner: BufWriter::new(Counted {
            inner: f,
            task: &task,
        }),
        hash: Sha256::new(),
        len: 0,
    };
    tree.write_tar(&mut w)
        .and_then(|_| w.flush())
        .map_err(|source| BakeError::Write {
            path: opts.out.join(&tmp),
            source,
        })?;
    let sha256 = hex::encode(w.hash.clone().finalize());
    drop(w);
    task.finish();
    Ok(manifest::Output {
        file: tmp,
        format: OutputFormat::Tar.name().into(),
        size: 0,
        sha256,
    })
}

/// The raw image and every disk format made from it.
#[allow(clippy::too_many_arguments)]
fn write_disk(
    tree: &mut Tree,
    spec: &ImageSpec,
    formats: &[OutputFormat],
    seed: &[u8; 32],
    time: u32,
    staging: &mut Staging,
    opts: &BakeOptions,
    progress: &dyn Reporter,
    warnings: &mut Vec<String>,
    bios: Option<&BiosBoot>,
) -> Result<(Vec<manifest::Output>, DiskFacts)> {
    progress.step("writing the disk");
    // The spec's choice, else what the base's own fstab mounts at `/`.
    let fs_kind = spec
        .filesystem
        .or_else(|| FilesystemKind::of_tree(tree))
        .unwrap_or(FilesystemKind::Ext4);
    let prepared = layout::prepare(tree, seed, time, spec.arch, fs_kind)?;
    if !prepared.bootable {
        warnings.push(format!(
            "the image will not boot: {}",
            prepared.not_bootable_because.join("; ")
        ));
    }
    let size = match spec.size {
        crate::spec::image::Size::Auto => crate::disk::gpt::Size::Auto,
        crate::spec::image::Size::Bytes(b) => crate::disk::gpt::Size::Bytes(b),
    };
    let clone_err = |name: &str| {
        let path = opts.out.join(name);
        move |source| BakeError::Write { path, source }
    };
    let raw_tmp = temporary(spec, OutputFormat::Raw);
    let raw_file = staging
        .create(&raw_tmp)?
        .try_clone()
        .map_err(clone_err(&raw_tmp))?;
    let bad_size = |m: String| match spec.at_size {
        Some(at) => BakeError::Spec(spec.error_at(at, m)),
        None => BakeError::Usage(m),
    };
    let written = layout::lay_out_raw(
        tree, &prepared, fs_kind, spec.arch, size, seed, time, &raw_file, &bad_size, bios,
    )?;
    if let Some(why) = &written.not_bios_bootable_because {
        warnings.push(format!(
            "the image will not boot by legacy BIOS (instance types that boot only so will \
             not start it): {why}"
        ));
    }
    let raw_path = staging
        .path_of(&raw_tmp)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let raw = std::fs::File::open(&raw_path).map_err(|source| BakeError::Read {
        path: raw_path.clone(),
        source,
    })?;

    // Every other disk format, made from the raw image as one pass reads it,
    // with a folder for its scratch files that goes when this stage ends.
    let scratch = staging.work_dir()?;
    let cx = Context {
        raw_len: written.layout.disk_size,
        seed: *seed,
        source_date: u64::from(time),
        scratch: scratch.path().to_path_buf(),
    };
    let mut made = open_formats(spec, formats, staging, &cx)?;
    let names: Vec<&str> = made.iter().map(|(f, _, _)| f.name()).collect();
    progress.step(&if names.is_empty() {
        "writing the root filesystem".to_string()
    } else {
        format!("writing the root filesystem and the {}", names.join(", "))
    });
    let keep_raw = formats.contains(&OutputFormat::Raw);
    let (digests, writing) = write_and_digest(
        tree,
        &written,
        (&raw_file, &raw_path, &raw),
        &mut made,
        keep_raw,
        opts,
        progress,
    )?;
    let done = RawDone {
        file: &raw,
        sha256: digests.sha256,
        hasher: &digests.hasher,
    };
    let mut outputs = Vec::new();
    if keep_raw {
        outputs.push(manifest::Output {
            file: raw_tmp.clone(),
            format: OutputFormat::Raw.name().into(),
            size: written.layout.disk_size,
            sha256: hex::encode(digests.sha256),
        });
    }
    for ((f, tmp, w), task) in made.into_iter().zip(&writing) {
        let m = w.finish(&done).map_err(BakeError::Disk)?;
        task.finish();
        outputs.push(manifest::Output {
            file: tmp,
            format: f.name().into(),
            size: m.size,
            sha256: hex::encode(m.sha256),
        });
    }
    drop(raw);
    drop(scratch);
    if !keep_raw {
        staging.discard(&raw_tmp);
    }
    let facts = disk_facts(spec, &written, &prepared, &digests.ebs);
    Ok((outputs, facts))
}

/// The one pass: the root filesystem written into the raw image on a
/// thread of its own while the image is digested behind its watermark and
/// fed to every format's stream. Returns the digests and each format's
/// task (finished when the format is).
fn write_and_digest<'p>(
    tree: &Tree,
    written: &layout::Written,
    (raw_file, raw_path, raw): (&std::fs::File, &Path, &std::fs::File),
    made: &mut [Opened],
    keep_raw: bool,
    opts: &BakeOptions,
    progress: &'p dyn Reporter,
) -> Result<(crate::disk::RawDigests, Vec<Task<'p>>)> {
    let final_mark = Watermark::new();
    let root_size = written.layout.root.end - written.layout.root.start;
    let writing_root = Task::start(
        progress,
        "writing the root filesystem",
        Unit::Bytes,
        Some(root_size),
    );
    let disk_size = written.layout.disk_size;
    let reading = Task::start(
        progress,
        "digesting the disk image",
        Unit::Bytes,
        Some(disk_size),
    );
    let writing: Vec<Task> = made
        .iter()
        .map(|(_, tmp, _)| {
            Task::start(
                progress,
                &format!("writing {tmp}"),
                Unit::Bytes,
                Some(disk_size),
            )
        })
        .collect();
    let passed = |at: u64| {
        reading.reach(at);
        writing.iter().for_each(|t| t.reach(at));
    };
    let digests = std::thread::scope(|s| {
        let root = s.spawn(|| {
            layout::write_root(tree, written, raw_file, &final_mark, &writing_root)?;
            writing_root.finish();
            // The raw image goes to disk while the rest of it is digested
            // (the commit's own sync then finds nothing left to write),
            // when it is kept.
            if keep_raw {
                raw_file.sync_data().map_err(|source| BakeError::Write {
                    path: raw_path.to_path_buf(),
                    source,
                })?;
            }
            Ok::<(), BakeError>(())
        });
        let mut streams: Vec<&mut dyn RawStream> =
            made.iter_mut().map(|(_, _, w)| w.stream()).collect();
        let d =
            crate::disk::digest_raw_reporting(raw, &mut streams, opts.jobs, &final_mark, &passed);
        // The writer's error first: the reader only stops because of it.
        root.join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        d.map_err(BakeError::Disk)
    })?;
    reading.finish();
    Ok((digests, writing))
}

/// A disk format being made: its format, its staged name, its writer.
type Opened = (OutputFormat, String, Box<dyn ImageFormat>);

/// Each disk format other than raw, opened on its staged file.
fn open_formats(
    spec: &ImageSpec,
    formats: &[OutputFormat],
    staging: &mut Staging,
    cx: &Context,
) -> Result<Vec<Opened>> {
    let mut made: Vec<Opened> = Vec::new();
    for &f in formats {
        let tmp = temporary(spec, f);
        if !f.is_disk() || f == OutputFormat::Raw {
            continue;
        }
        let file = staging
            .create(&tmp)?
            .try_clone()
            .map_err(|source| BakeError::Write {
                path: staging
                    .path_of(&tmp)
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                source,
            })?;
        if let Some(w) = f.image_format(file, cx).map_err(BakeError::Disk)? {
            made.push((f, tmp, w));
        }
    }
    Ok(made)
}

fn disk_facts(
    spec: &ImageSpec,
    written: &layout::Written,
    prepared: &layout::Prepared,
    ebs: &crate::disk::ebs::Checksum,
) -> DiskFacts {
    let parts = written.layout.partitions();
    DiskFacts {
        disk: manifest::Disk {
            size: written.layout.disk_size,
            disk_guid: written.layout.guids.disk.to_string(),
            partitions: parts
                .iter()
                .map(|p| manifest::Partition {
                    number: p.number,
                    name: p.name.clone(),
                    type_guid: p.type_guid.to_string(),
                    guid: p.guid.to_string(),
                    first_lba: p.first_lba,
                    last_lba: p.last_lba,
                    offset: p.offset(),
                    size: p.size(),
                })
                .collect(),
            root_uuid: layout::uuid_text(&prepared.root_uuid),
            root_uuid_from: prepared.root_uuid_from.to_string(),
            esp_volume_id: format!(
                "{:04X}-{:04X}",
                prepared.esp_volume_id >> 16,
                prepared.esp_volume_id & 0xffff
            ),
            bootable: prepared.bootable,
            not_bootable_because: prepared.not_bootable_because.clone(),
            bios_bootable: written.not_bios_bootable_because.is_none(),
        },
        ebs: manifest::Ebs {
            block_size: ebs.block_size,
            changed_blocks: ebs.changed_blocks,
            linear_checksum_sha256: ebs.linear_sha256_base64.clone(),
        },
        register: manifest::RegisterImage {
            architecture: spec.arch.ec2().into(),
            boot_mode: "uefi".into(),
            ena_support: true,
            virtualization_type: "hvm".into(),
            root_device_name: "/dev/xvda".into(),
            volume_size_gib: written.layout.volume_gib(),
        },
    }
}
