//! Extended attributes (attributes.rst): names to index numbers, ACLs to
//! ext4's on-disk form, the choice between the inode body and an xattr
//! block, and the bytes of both.
//!
//! Placement rule (deterministic): in the order an xattr block must hold
//! them (`e_name_index`, then `e_name_len`, then the name), each attribute
//! goes into the inode body if it still fits there, else into the one
//! xattr block. Identical blocks are
//! shared (`h_refcount`), up to the kernel's 1024 references per block.

use std::collections::BTreeMap;

use super::Ext4Error;
use super::format::{
    EXT4_XATTR_MAGIC, IBODY_XATTR_OFFSET, INODE_SIZE, XattrEntry, XattrHeader, XattrIbodyHeader,
};
use super::hash::{xattr_block_hash, xattr_entry_hash};

/// Bytes of the inode record after `i_extra_isize`.
pub(crate) const IBODY_SPACE: usize = INODE_SIZE - IBODY_XATTR_OFFSET;
/// The kernel shares one xattr block among at most this many inodes
/// (`EXT4_XATTR_REFCOUNT_MAX`).
pub(crate) const XATTR_REFCOUNT_MAX: u32 = 1024;

/// One attribute as stored: index, name without the prefix, value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Item {
    pub index: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl Item {
    /// The sort key of a block's entries (attributes.rst).
    fn key(&self) -> (u8, usize, &[u8]) {
        (self.index, self.name.len(), &self.name)
    }

    fn entry_size(&self) -> usize {
        pad4(XattrEntry::SIZE + self.name.len())
    }

    fn value_size(&self) -> usize {
        pad4(self.value.len())
    }
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// attributes.rst, "Attribute Name Indices": the longest prefix first.
const PREFIXES: &[(&str, u8)] = &[
    ("system.posix_acl_access", 2),
    ("system.posix_acl_default", 3),
    ("system.richacl", 8),
    ("user.", 1),
    ("trusted.", 4),
    ("security.", 6),
    ("system.", 7),
];

/// A tree's attributes as ext4 stores them, in block order.
pub(crate) fn items(
    xattrs: &BTreeMap<String, Vec<u8>>,
    path: &str,
) -> Result<Vec<Item>, Ext4Error> {
    let mut out = Vec::with_capacity(xattrs.len());
    for (full, value) in xattrs {
        // Prefixes ending in `.` start a namespace; the others (ACLs) are
        // whole names.
        let (index, name) = PREFIXES
            .iter()
            .find(|(p, _)| {
                if p.ends_with('.') {
                    full.starts_with(p)
                } else {
                    full == p
                }
            })
            .map_or((0, full.as_str()), |(p, i)| (*i, &full[p.len()..]));
        if name.len() > 255 {
            return Err(Ext4Error::XattrNameTooLong {
                path: path.to_string(),
                name: full.clone(),
            });
        }
        let value = if index == 2 || index == 3 {
            acl_to_disk(value).map_err(|reason| Ext4Error::BadAcl {
                path: path.to_string(),
                name: full.clone(),
                reason,
            })?
        } else {
            value.clone()
        };
        out.push(Item {
            index,
            name: name.as_bytes().to_vec(),
            value,
        });
    }
    out.sort_by(|a, b| a.key().cmp(&b.key()));
    Ok(out)
}

/// POSIX ACL tags (`acl/libacl.h`).
const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;

/// attributes.rst, "POSIX ACLs": the xattr form (`a_version` 2, every
/// entry tag, perm, id) becomes ext4's (`a_version` 1, the id only for
/// named users and groups). A value already in ext4's form is kept.
fn acl_to_disk(value: &[u8]) -> Result<Vec<u8>, String> {
    let version = value
        .get(..4)
        .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
        .ok_or("shorter than its header")?;
    match version {
        1 => return Ok(value.to_vec()),
        2 => {}
        v => return Err(format!("version {v}, expected 2")),
    }
    let body = &value[4..];
    if !body.len().is_multiple_of(8) {
        return Err(format!(
            "{} bytes of entries, not a multiple of 8",
            body.len()
        ));
    }
    let mut out = 1u32.to_le_bytes().to_vec();
    for e in body.chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        match tag {
            ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_MASK | ACL_OTHER => out.extend_from_slice(&e[..4]),
            ACL_USER | ACL_GROUP => out.extend_from_slice(e),
            t => return Err(format!("unknown tag {t:#x}")),
        }
    }
    Ok(out)
}

/// Split `items` (in block order) into those kept in the inode body and
/// those that go to a block; error if the block's share does not fit.
pub(crate) fn place(items: Vec<Item>, path: &str) -> Result<(Vec<Item>, Vec<Item>), Ext4Error> {
    // Magic and the 4-byte end marker.
    let mut used = XattrIbodyHeader::SIZE + 4;
    let (mut ibody, mut block) = (Vec::new(), Vec::new());
    for it in items {
        let need = it.entry_size() + it.value_size();
        if used + need <= IBODY_SPACE {
            used += need;
            ibody.push(it);
        } else {
            block.push(it);
        }
    }
    let need = block_bytes(&block);
    if need > super::BLOCK_SIZE as usize {
        return Err(Ext4Error::XattrsTooLarge {
            path: path.to_string(),
            needed: need,
            max: super::BLOCK_SIZE as usize,
        });
    }
    Ok((ibody, block))
}

/// Bytes an xattr block with `items` needs.
fn block_bytes(items: &[Item]) -> usize {
    XattrHeader::SIZE
        + 4
        + items
            .iter()
            .map(|i| i.entry_size() + i.value_size())
            .sum::<usize>()
}

/// Write `items` as an entry table at `table` and values packed downward
/// from `end` in `buf`; value offsets count from `base`. Returns the entry
/// hashes. `hashed` says whether entries carry their hash (blocks) or 0
/// (the inode body, as attributes.rst asks).
fn render(
    buf: &mut [u8],
    table: usize,
    base: usize,
    end: usize,
    items: &[Item],
    hashed: bool,
) -> Vec<u32> {
    let mut at = table;
    let mut value_end = end;
    let mut hashes = Vec::with_capacity(items.len());
    for it in items {
        let offs = if it.value.is_empty() {
            0
        } else {
            value_end -= it.value_size();
            buf[value_end..value_end + it.value.len()].copy_from_slice(&it.value);
            value_end - base
        };
        let hash = if hashed {
            xattr_entry_hash(&it.name, &it.value)
        } else {
            0
        };
        hashes.push(xattr_entry_hash(&it.name, &it.value));
        let mut e = XattrEntry::zeroed();
        e.e_name_len = it.name.len() as u8;
        e.e_name_index = it.index;
        e.e_value_offs = (offs as u16).into();
        e.e_value_size = (it.value.len() as u32).into();
        e.e_hash = hash.into();
        buf[at..at + XattrEntry::SIZE].copy_from_slice(e.as_bytes());
        buf[at + XattrEntry::SIZE..at + XattrEntry::SIZE + it.name.len()].copy_from_slice(&it.name);
        at += it.entry_size();
    }
    hashes
}

/// The inode body's attribute area (the record's last [`IBODY_SPACE`]
/// bytes); all zero when there are none.
pub(crate) fn render_ibody(items: &[Item]) -> [u8; IBODY_SPACE] {
    let mut area = [0u8; IBODY_SPACE];
    if items.is_empty() {
        return area;
    }
    let mut h = XattrIbodyHeader::zeroed();
    h.h_magic = EXT4_XATTR_MAGIC.into();
    area[..4].copy_from_slice(h.as_bytes());
    render(&mut area, 4, 4, IBODY_SPACE, items, false);
    area
}

/// An xattr block holding `items` with `refcount` references; its
/// `h_checksum` is left 0 (it covers the block number: see `write.rs`).
pub(crate) fn render_block(items: &[Item], refcount: u32) -> Vec<u8> {
    let mut block = vec![0u8; super::BLOCK_SIZE as usize];
    let end = block.len();
    let hashes = render(&mut block, XattrHeader::SIZE, 0, end, items, true);
    let mut h = XattrHeader::zeroed();
    h.h_magic = EXT4_XATTR_MAGIC.into();
    h.h_refcount = refcount.into();
    h.h_blocks = 1u32.into();
    h.h_hash = xattr_block_hash(hashes).into();
    block[..XattrHeader::SIZE].copy_from_slice(h.as_bytes());
    block
}

/// A compact key for sharing identical blocks.
pub(crate) fn share_key(items: &[Item]) -> Vec<u8> {
    let mut k = Vec::new();
    for it in items {
        k.push(it.index);
        k.extend_from_slice(&(it.name.len() as u32).to_le_bytes());
        k.extend_from_slice(&it.name);
        k.extend_from_slice(&(it.value.len() as u32).to_le_bytes());
        k.extend_from_slice(&it.value);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }

    #[test]
    fn prefixes_map_to_their_indices_and_sort_as_a_block_needs() {
        let it = items(
            &map(&[
                ("user.bb", b"1"),
                ("security.selinux", b"x"),
                ("trusted.a", b"2"),
                ("user.a", b"3"),
                ("other", b"4"),
            ]),
            "/f",
        )
        .unwrap();
        let got: Vec<(u8, &[u8])> = it.iter().map(|i| (i.index, &i.name[..])).collect();
        assert_eq!(
            got,
            vec![
                (0, &b"other"[..]),
                (1, b"a"),
                (1, b"bb"),
                (4, b"a"),
                (6, b"selinux")
            ]
        );
    }

    #[test]
    fn acls_become_the_short_ext4_form() {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (1u16, 6u16, u32::MAX),
            (2, 4, 1000),
            (4, 4, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 0, u32::MAX),
        ] {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        let it = items(&map(&[("system.posix_acl_access", &v)]), "/f").unwrap();
        assert_eq!(it[0].index, 2);
        assert!(it[0].name.is_empty());
        assert_eq!(it[0].value.len(), 4 + 4 + 8 + 4 + 4 + 4);
        assert!(items(&map(&[("system.posix_acl_access", b"junk")]), "/f").is_err());
    }

    #[test]
    fn what_does_not_fit_in_the_inode_goes_to_the_block() {
        let big = vec![7u8; 200];
        let it = items(
            &map(&[
                ("security.selinux", b"system_u:object_r:bin_t:s0"),
                ("user.big", &big),
            ]),
            "/f",
        )
        .unwrap();
        let (ibody, block) = place(it, "/f").unwrap();
        assert_eq!(ibody.len(), 1);
        assert_eq!(block.len(), 1);
        let area = render_ibody(&ibody);
        assert_eq!(&area[..4], &EXT4_XATTR_MAGIC.to_le_bytes());
        let huge = vec![1u8; 5000];
        let it = items(&map(&[("user.huge", &huge)]), "/f").unwrap();
        assert!(matches!(
            place(it, "/f"),
            Err(Ext4Error::XattrsTooLarge { .. })
        ));
    }
}
