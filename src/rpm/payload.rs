//! Package payloads: the compressed cpio archive after the headers.
//!
//! In: a stream positioned at the payload and the name rpm records in
//! PAYLOADCOMPRESSOR (`gzip`, `bzip2`, `xz`, `lzma`, `zstd`, or none).
//! Out: a stream of the uncompressed archive. Streams only; never holds a
//! whole payload in memory.

use std::io::{self, BufRead, BufReader, Read};

/// A reader that decompresses `r` as rpm would for `compressor`.
///
/// Without a PAYLOADCOMPRESSOR tag rpm opens the payload as gzip, and zlib
/// passes through data that is not gzip; so does this: gzip when the
/// payload starts with gzip's magic, as it is otherwise.
pub fn decoder<'a, R: Read + 'a>(compressor: Option<&str>, r: R) -> io::Result<Box<dyn Read + 'a>> {
    let (compressor, r): (&str, Box<dyn Read + 'a>) = match compressor {
        Some(c) => (c, Box::new(r)),
        None => {
            let mut r = BufReader::new(r);
            let gzip = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
            (if gzip { "gzip" } else { "identity" }, Box::new(r))
        }
    };
    Ok(match compressor {
        "gzip" => Box::new(flate2::read::MultiGzDecoder::new(r)),
        "bzip2" => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        "xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        "lzma" => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Box::new(liblzma::read::XzDecoder::new_stream(r, stream))
        }
        "zstd" => Box::new(zstd::stream::read::Decoder::new(r)?),
        "identity" | "none" | "" => Box::new(r),
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown payload compressor `{other}`"),
            ));
        }
    })
}

/// The number of bytes `r` yields, read in bounded chunks.
pub fn count(mut r: impl Read) -> io::Result<u64> {
    io::copy(&mut r, &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn every_compressor_round_trips() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let zs = zstd::stream::encode_all(&data[..], 3).unwrap();
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let bz = {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        for (name, bytes) in [
            ("gzip", gz),
            ("zstd", zs),
            ("xz", xz),
            ("bzip2", bz),
            ("identity", data.clone()),
        ] {
            let mut out = Vec::new();
            decoder(Some(name), &bytes[..])
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == data, "{name}");
        }
        assert!(decoder(Some("lz4"), &b""[..]).is_err());
        // No tag: gzip if it looks like gzip, else as it is.
        let mut out = Vec::new();
        decoder(None, &data[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == data);
    }
}
