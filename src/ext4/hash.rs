//! The checksum and the hashes ext4 stores: crc32c (checksums.rst), the
//! directory hash (half MD4, directory.rst "Hash Tree Directories") and the
//! extended attribute hashes (attributes.rst).
//!
//! crc32c comes from the `crc32c` crate (the SSE4.2 instruction where the
//! processor has it). ext4 uses it the way the kernel's `crc32c_le` does:
//! the caller passes the running value and nothing is inverted (the
//! filesystem seed is `crc32c_le(!0, uuid)`); the crate's `crc32c_append`
//! inverts on the way in and out, so [`crc32c_le`] undoes both.

/// crc32c of `data` continuing from `crc`, without pre- or post-inversion
/// (the kernel's `crc32c_le`, which `ext4_chksum` calls).
pub(crate) fn crc32c_le(crc: u32, data: &[u8]) -> u32 {
    !crc32c::crc32c_append(!crc, data)
}

/// The directory hash: half MD4 over the name with the superblock's seed,
/// bytes taken as unsigned (we set `EXT2_FLAGS_UNSIGNED_HASH`, so readers
/// use `DX_HASH_HALF_MD4_UNSIGNED`). Returns `(hash, minor_hash)`; the
/// major hash has its low bit clear, as the kernel's `ext4fs_dirhash`
/// leaves it.
pub(crate) fn dx_hash(name: &[u8], seed: &[u32; 4]) -> (u32, u32) {
    let mut buf = if seed.iter().all(|w| *w == 0) {
        [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
    } else {
        *seed
    };
    let mut rest = name;
    while !rest.is_empty() {
        half_md4_transform(&mut buf, &str2hashbuf(rest));
        rest = &rest[rest.len().min(32)..];
    }
    let mut hash = buf[1] & !1;
    // EXT4_HTREE_EOF_32BIT << 1 is reserved for "end of directory".
    if hash == 0x7FFF_FFFF << 1 {
        hash = (0x7FFF_FFFF - 1) << 1;
    }
    (hash, buf[2])
}

/// Eight words from the rest of a name (`str2hashbuf_unsigned`): the pad
/// word repeats the remaining length in every byte; bytes shift in four to
/// a word, the first one ending highest.
fn str2hashbuf(msg: &[u8]) -> [u32; 8] {
    let len = msg.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut out = [pad; 8];
    let take = msg.len().min(32);
    let mut val = pad;
    let mut word = 0;
    for (i, &b) in msg[..take].iter().enumerate() {
        if i % 4 == 0 {
            val = pad;
        }
        val = u32::from(b).wrapping_add(val << 8);
        if i % 4 == 3 {
            out[word] = val;
            word += 1;
            val = pad;
        }
    }
    if word < 8 {
        out[word] = val;
    }
    out
}

/// MD4 cut down to three rounds of eight steps, as the directory hash
/// uses it (the kernel's `half_md4_transform`).
fn half_md4_transform(buf: &mut [u32; 4], input: &[u32; 8]) {
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *buf;
    let step =
        |fun: &dyn Fn(u32, u32, u32) -> u32, a: u32, b: u32, c: u32, d: u32, x: u32, s: u32| {
            a.wrapping_add(fun(b, c, d)).wrapping_add(x).rotate_left(s)
        };
    // Round 1.
    for i in [0usize, 4] {
        a = step(&f, a, b, c, d, input[i], 3);
        d = step(&f, d, a, b, c, input[i + 1], 7);
        c = step(&f, c, d, a, b, input[i + 2], 11);
        b = step(&f, b, c, d, a, input[i + 3], 19);
    }
    // Round 2.
    for i in [1usize, 0] {
        a = step(&g, a, b, c, d, input[i].wrapping_add(K2), 3);
        d = step(&g, d, a, b, c, input[i + 2].wrapping_add(K2), 5);
        c = step(&g, c, d, a, b, input[i + 4].wrapping_add(K2), 9);
        b = step(&g, b, c, d, a, input[i + 6].wrapping_add(K2), 13);
    }
    // Round 3.
    for i in [3usize, 1] {
        let order = if i == 3 { [3, 7, 2, 6] } else { [1, 5, 0, 4] };
        a = step(&h, a, b, c, d, input[order[0]].wrapping_add(K3), 3);
        d = step(&h, d, a, b, c, input[order[1]].wrapping_add(K3), 9);
        c = step(&h, c, d, a, b, input[order[2]].wrapping_add(K3), 11);
        b = step(&h, b, c, d, a, input[order[3]].wrapping_add(K3), 15);
    }
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

/// attributes.rst: the hash of one xattr entry, over its name (without
/// the prefix its index stands for) and its value as little-endian words
/// (`ext4_xattr_hash_entry`, names as unsigned bytes).
pub(crate) fn xattr_entry_hash(name: &[u8], value: &[u8]) -> u32 {
    const NAME_HASH_SHIFT: u32 = 5;
    const VALUE_HASH_SHIFT: u32 = 16;
    let mut hash = 0u32;
    for &b in name {
        hash = hash.rotate_left(NAME_HASH_SHIFT) ^ u32::from(b);
    }
    for chunk in value.chunks(4) {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = hash.rotate_left(VALUE_HASH_SHIFT) ^ u32::from_le_bytes(word);
    }
    hash
}

/// attributes.rst: the block's `h_hash`, from its entries' hashes in order
/// (`ext4_xattr_rehash`); 0 if any entry hash is 0.
pub(crate) fn xattr_block_hash(entry_hashes: impl IntoIterator<Item = u32>) -> u32 {
    const BLOCK_HASH_SHIFT: u32 = 16;
    let mut hash = 0u32;
    for e in entry_hashes {
        if e == 0 {
            return 0;
        }
        hash = hash.rotate_left(BLOCK_HASH_SHIFT) ^ e;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" (with the usual inversions).
        assert_eq!(!crc32c_le(!0, b"123456789"), 0xE306_9283);
        // Continuing is the same as one pass, and a zero start is not
        // inverted (the kernel's `crc32c_le(0, ...)`: a bitwise reference).
        assert_eq!(
            crc32c_le(crc32c_le(7, b"1234"), b"56789"),
            crc32c_le(7, b"123456789")
        );
        let bitwise = |mut crc: u32, data: &[u8]| {
            for &b in data {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = (crc >> 1) ^ (0x82F6_3B78 & 0u32.wrapping_sub(crc & 1));
                }
            }
            crc
        };
        for (seed, data) in [(0, &b"ext4"[..]), (0x1234_5678, &[0u8; 300][..])] {
            assert_eq!(crc32c_le(seed, data), bitwise(seed, data));
        }
    }

    /// Values `debugfs -R "dx_hash -h 4 -s 11111111-2222-3333-4444-555555555555 NAME"`
    /// prints (hash version 4: half MD4, unsigned).
    #[test]
    fn dx_hash_matches_debugfs() {
        let seed = [0x1111_1111, 0x3333_2222, 0x5555_4444, 0x5555_5555];
        assert_eq!(dx_hash(b"a", &seed), (0x61ab_28ce, 0x4ffe_6d79));
        assert_eq!(dx_hash(b"lost+found", &seed), (0x10e0_9910, 0x2cea_ef16));
        assert_eq!(
            dx_hash(
                b"a-name-that-is-longer-than-thirty-two-bytes-for-sure.txt",
                &seed
            ),
            (0x9b6d_4e34, 0x7552_b5ba)
        );
        assert_eq!(dx_hash("été".as_bytes(), &seed), (0x8151_0094, 0x2217_e400));
    }

    #[test]
    fn dx_hash_of_an_empty_seed_uses_the_md4_constants() {
        // The default seed is used for an all-zero seed.
        assert_eq!(
            dx_hash(b"abc", &[0; 4]),
            dx_hash(
                b"abc",
                &[0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
            )
        );
        // The low bit of the major hash is always clear.
        for name in [&b"a"[..], b"lost+found", &[0xFFu8; 100]] {
            assert_eq!(dx_hash(name, &[1, 2, 3, 4]).0 & 1, 0);
        }
    }
}
