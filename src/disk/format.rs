//! The output formats `bake` writes, and the seam every disk image format
//! plugs into.
//!
//! In: the raw disk image, once, as [`super::digest_raw`]'s single pass
//! reads it (parts in any order on worker threads, then every part and hole
//! in image order, each starting on a [`PART_ALIGN`] boundary), a scratch
//! folder for what a format must hold until it can write its file front
//! to back ([`Context::scratch`]), and at the end the raw image's digest.
//! Out: the format's file, its size and its SHA-256.
//!
//! Adding a disk format is one module under `disk/` implementing
//! [`ImageFormat`] (its share of the pass is a [`RawStream`]) and one
//! variant of [`OutputFormat`] with its line in [`OutputFormat::image_format`].
//! The pass names no format: it hands every stream the same parts.
//!
//! Never: a format changes the raw image, or its bytes depend on the
//! number of worker threads or the order they finish in.

use std::any::Any;
use std::fs::File;
use std::path::PathBuf;

use sha2::Sha256;

use super::Result;

/// An output of `bake` (`formats` in the image spec, `--format` on the
/// command line).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The sparse GPT disk image itself (`raw`).
    Raw,
    /// Stream-optimized VMDK (`vmdk`), what AWS VM Import wants.
    Vmdk,
    /// Fixed VHD (`vhd`).
    Vhd,
    /// qcow2 version 3 (`qcow2`), what OpenStack, DigitalOcean and KVM
    /// hosts import.
    Qcow2,
    /// Google Compute Engine's import format (`gce`): `disk.raw` in a
    /// gzip-compressed GNU tar, named `NAME-DIGEST.gce.tar.gz`.
    Gce,
    /// The finished root filesystem as a reproducible tarball (`tar`): not
    /// a disk; written from the tree, not from the raw image.
    Tar,
}

impl OutputFormat {
    /// Every format, in the order outputs are listed.
    pub const ALL: &'static [OutputFormat] = &[
        OutputFormat::Raw,
        OutputFormat::Vmdk,
        OutputFormat::Vhd,
        OutputFormat::Qcow2,
        OutputFormat::Gce,
        OutputFormat::Tar,
    ];

    /// The name in specs, on the command line and in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Raw => "raw",
            OutputFormat::Vmdk => "vmdk",
            OutputFormat::Vhd => "vhd",
            OutputFormat::Qcow2 => "qcow2",
            OutputFormat::Gce => "gce",
            OutputFormat::Tar => "tar",
        }
    }

    /// The file name extension after `NAME-DIGEST.`.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Gce => "gce.tar.gz",
            f => f.name(),
        }
    }

    /// The format with this name.
    pub fn from_name(name: &str) -> Option<OutputFormat> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Whether the output is a disk image (made from the raw image).
    pub fn is_disk(self) -> bool {
        !matches!(self, OutputFormat::Tar)
    }

    /// The writer of a disk format made from the raw image into `out`
    /// (empty, open for reading and writing: a format may read back what
    /// it wrote); `None` for the raw image itself and for the tarball.
    pub fn image_format(self, out: File, cx: &Context) -> Result<Option<Box<dyn ImageFormat>>> {
        Ok(match self {
            OutputFormat::Raw | OutputFormat::Tar => None,
            OutputFormat::Vmdk => Some(Box::new(super::vmdk::Format::new(out, cx)?)),
            OutputFormat::Vhd => Some(Box::new(super::vhd::Format::new(out, cx)?)),
            OutputFormat::Qcow2 => Some(Box::new(super::qcow2::Format::new(out, cx)?)),
            OutputFormat::Gce => Some(Box::new(super::gce::Format::new(out, cx)?)),
        })
    }
}

impl std::fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a format knows before the pass.
#[derive(Debug, Clone)]
pub struct Context {
    /// The raw image's length in bytes.
    pub raw_len: u64,
    /// The digest of the image's inputs (known before the image is read;
    /// a VMDK's content ID comes from it).
    pub seed: [u8; 32],
    /// The bake's source date (a VHD's time stamp).
    pub source_date: u64,
    /// A folder on the outputs' filesystem for a format's scratch files
    /// (what it must hold until it can write its file front to back),
    /// removed with everything in it when the bake ends, also on an error
    /// or a signal.
    pub scratch: PathBuf,
}

/// The raw image once the pass is over.
pub struct RawDone<'a> {
    pub file: &'a File,
    pub sha256: [u8; 32],
    /// The SHA-256 state after the image's last byte: a format whose file
    /// is the image followed by more bytes (a VHD) finishes its digest
    /// from it instead of reading the image again.
    pub hasher: &'a Sha256,
}

/// A finished output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Made {
    pub size: u64,
    pub sha256: [u8; 32],
}

/// A disk image format made from the raw image.
pub trait ImageFormat: Send {
    /// Its share of the one pass over the raw image.
    fn stream(&mut self) -> &mut dyn RawStream;

    /// After the pass: write what is left (tables, footers) and say what
    /// was made.
    fn finish(self: Box<Self>, raw: &RawDone<'_>) -> Result<Made>;
}

/// What a worker made of a part of the image for one stream (the stream's
/// own type: [`RawStream::consume`] takes back what its encoder made).
pub type Encoded = Box<dyn Any + Send>;

/// Every part the pass hands out ([`PartEncoder::encode`],
/// [`RawStream::consume`]) starts at a multiple of this many bytes (1 MiB)
/// and is a multiple of it long, but the image's last part, which ends
/// where the image does: a format's clusters or grains of up to 1 MiB
/// never straddle two parts.
pub const PART_ALIGN: u64 = 1 << 20;

/// A format's share of the pass.
pub trait RawStream: Send {
    /// An encoder for one worker thread (made before the workers start;
    /// it owns what it needs, such as a compressor's state).
    fn encoder(&self) -> Result<Box<dyn PartEncoder>>;

    /// Every part of the image, in image order: data as the encoder made
    /// it, or a hole (all zeros, `len` bytes).
    fn consume(&mut self, offset: u64, part: Part) -> Result<()>;
}

/// A part of the image for [`RawStream::consume`].
pub enum Part {
    Data(Encoded),
    Hole { len: u64 },
}

/// What [`RawStream::consume`] gets back from its own encoder, as the type
/// the encoder made (an encoder and its stream always agree on it).
pub fn take<T: 'static>(e: Encoded) -> Result<T> {
    e.downcast::<T>()
        .map(|b| *b)
        .map_err(|_| super::DiskError::Io {
            action: "hand an encoded part to its format",
            offset: 0,
            source: std::io::Error::other("a part came back as another type"),
        })
}

/// Works on parts of the image on a worker thread, in any order.
pub trait PartEncoder: Send {
    fn encode(&mut self, offset: u64, bytes: &[u8]) -> Result<Encoded>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_the_tarball_is_not_a_disk() {
        for f in OutputFormat::ALL {
            assert_eq!(OutputFormat::from_name(f.name()), Some(*f));
            assert_eq!(f.is_disk(), *f != OutputFormat::Tar);
            let json = serde_json::to_string(f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.name()));
        }
        assert_eq!(OutputFormat::from_name("iso"), None);
        // `--format` takes the same names.
        for f in OutputFormat::ALL {
            assert_eq!(
                <OutputFormat as clap::ValueEnum>::from_str(f.name(), false),
                Ok(*f)
            );
        }
        assert_eq!(OutputFormat::Gce.extension(), "gce.tar.gz");
        assert_eq!(OutputFormat::Qcow2.extension(), "qcow2");
    }
}
