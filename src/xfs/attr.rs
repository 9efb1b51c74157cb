//! Extended attributes: names to XFS namespaces, POSIX ACLs to XFS's own
//! form, and the two attribute fork forms written: short form in the
//! inode (`xfs_attr_shortform`) while every value is under 256 bytes and
//! they fit beside the data fork, else one leaf block
//! (`xfs_attr3_leafblock`) with every value stored locally. Attributes
//! that need more than one leaf block, or a value too large to be local
//! (remote value blocks), are refused with an error naming the file.

use std::collections::BTreeMap;

use super::XfsError;
use super::format::*;

/// One attribute as XFS stores it: namespace flags, bare name, value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub flags: u8,
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// The leaf block header (`xfs_attr3_leaf_hdr`) and entry sizes.
const LEAF_HDR: usize = 80;
const LEAF_ENTRY: usize = 8;

/// The tree's attributes (full names) as XFS items, in a fixed order.
pub(crate) fn gather(
    xattrs: &BTreeMap<String, Vec<u8>>,
    path: &str,
) -> Result<Vec<Item>, XfsError> {
    let mut items = Vec::with_capacity(xattrs.len());
    for (full, value) in xattrs {
        let bad = |reason: &str| XfsError::Xattr {
            path: path.to_string(),
            name: full.clone(),
            reason: reason.to_string(),
        };
        let (flags, name, value) = if let Some(n) = full.strip_prefix("user.") {
            (0, n.as_bytes().to_vec(), value.clone())
        } else if let Some(n) = full.strip_prefix("trusted.") {
            (ATTR_ROOT, n.as_bytes().to_vec(), value.clone())
        } else if let Some(n) = full.strip_prefix("security.") {
            (ATTR_SECURE, n.as_bytes().to_vec(), value.clone())
        } else if full == "system.posix_acl_access" {
            (
                ATTR_ROOT,
                b"SGI_ACL_FILE".to_vec(),
                acl(value).map_err(bad)?,
            )
        } else if full == "system.posix_acl_default" {
            (
                ATTR_ROOT,
                b"SGI_ACL_DEFAULT".to_vec(),
                acl(value).map_err(bad)?,
            )
        } else {
            return Err(bad("XFS has no namespace for it"));
        };
        if name.is_empty() || name.len() > 255 {
            return Err(bad("the name must be 1 to 255 bytes after its prefix"));
        }
        items.push(Item { flags, name, value });
    }
    Ok(items)
}

/// A POSIX ACL in the kernel's xattr form (little-endian, version 2) to
/// XFS's (`xfs_acl`: big-endian count, then tag, id, permissions).
fn acl(v: &[u8]) -> Result<Vec<u8>, &'static str> {
    if v.len() < 4 || u32::from_le_bytes([v[0], v[1], v[2], v[3]]) != 2 {
        return Err("not a version 2 POSIX ACL");
    }
    let body = &v[4..];
    if !body.len().is_multiple_of(8) {
        return Err("the ACL's length is not a whole number of entries");
    }
    let mut out = Vec::with_capacity(4 + body.len() / 8 * 12);
    out.extend_from_slice(&((body.len() / 8) as u32).to_be_bytes());
    for e in body.chunks(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        out.extend_from_slice(&u32::from(tag).to_be_bytes());
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&perm.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
    }
    Ok(out)
}

/// Bytes of the short form, if every item can be short (values under
/// 256 bytes).
pub(crate) fn sf_size(items: &[Item]) -> Option<usize> {
    if items.iter().any(|i| i.value.len() > 255) {
        return None;
    }
    Some(
        4 + items
            .iter()
            .map(|i| 3 + i.name.len() + i.value.len())
            .sum::<usize>(),
    )
}

/// The short form fork (`xfs_attr_sf_hdr` then the entries).
pub(crate) fn render_sf(items: &[Item]) -> Vec<u8> {
    let size = sf_size(items).unwrap_or(0);
    let mut b = vec![0u8; size];
    put16(&mut b, 0, size as u16);
    b[2] = items.len() as u8;
    let mut at = 4;
    for i in items {
        b[at] = i.name.len() as u8;
        b[at + 1] = i.value.len() as u8;
        b[at + 2] = i.flags;
        at += 3;
        b[at..at + i.name.len()].copy_from_slice(&i.name);
        at += i.name.len();
        b[at..at + i.value.len()].copy_from_slice(&i.value);
        at += i.value.len();
    }
    b
}

fn local_size(i: &Item) -> usize {
    (3 + i.name.len() + i.value.len()).div_ceil(4) * 4
}

/// Can one leaf block hold `items`, every value local? (Local while the
/// name and value take under half a block, as the kernel decides.)
pub(crate) fn leaf_check(items: &[Item], path: &str) -> Result<(), XfsError> {
    let mut used = LEAF_HDR + items.len() * LEAF_ENTRY;
    for i in items {
        if local_size(i) >= BS / 2 {
            return Err(XfsError::Xattr {
                path: path.to_string(),
                name: String::from_utf8_lossy(&i.name).into_owned(),
                reason: format!(
                    "a value of {} bytes needs remote value blocks, which this writer does not make",
                    i.value.len()
                ),
            });
        }
        used += local_size(i);
    }
    if used > BS {
        return Err(XfsError::XattrsTooLarge {
            path: path.to_string(),
            needed: used,
        });
    }
    Ok(())
}

/// The leaf block: entries sorted by name hash, names and values packed
/// down from the block's end.
pub(crate) fn render_leaf(items: &[Item], owner: u64, uuid: &[u8; 16], daddr: u64) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    put16(&mut b, 8, ATTR3_LEAF_MAGIC);
    put64(&mut b, 16, daddr);
    b[32..48].copy_from_slice(uuid);
    put64(&mut b, 48, owner);
    let mut order: Vec<(u32, &Item)> = items.iter().map(|i| (da_hash(&i.name), i)).collect();
    order.sort_by_key(|(h, _)| *h);
    let mut top = BS;
    let mut used = 0;
    for (k, (hash, i)) in order.iter().enumerate() {
        let size = local_size(i);
        top -= size;
        used += size;
        b[top..top + 2].copy_from_slice(&(i.value.len() as u16).to_be_bytes());
        b[top + 2] = i.name.len() as u8;
        let at = top + 3;
        b[at..at + i.name.len()].copy_from_slice(&i.name);
        b[at + i.name.len()..at + i.name.len() + i.value.len()].copy_from_slice(&i.value);
        let e = LEAF_HDR + k * LEAF_ENTRY;
        put32(&mut b, e, *hash);
        put16(&mut b, e + 4, top as u16);
        b[e + 6] = ATTR_LOCAL | i.flags;
    }
    put16(&mut b, 56, items.len() as u16);
    put16(&mut b, 58, used as u16);
    put16(&mut b, 60, top as u16);
    let base = LEAF_HDR + items.len() * LEAF_ENTRY;
    put16(&mut b, 64, base as u16);
    put16(&mut b, 66, (top - base) as u16);
    set_crc(&mut b, 12);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_their_namespace_and_acls_change_form() {
        let mut x = BTreeMap::new();
        x.insert("security.selinux".to_string(), b"ctx\0".to_vec());
        x.insert("user.a".to_string(), b"1".to_vec());
        // user::rw-, group::r--, other::r--
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, perm) in [(1u16, 6u16), (4, 4), (0x20, 4)] {
            acl.extend_from_slice(&tag.to_le_bytes());
            acl.extend_from_slice(&perm.to_le_bytes());
            acl.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        x.insert("system.posix_acl_access".to_string(), acl);
        let items = gather(&x, "/f").unwrap();
        assert_eq!(items[0].flags, ATTR_SECURE);
        assert_eq!(items[0].name, b"selinux");
        assert_eq!(items[1].name, b"SGI_ACL_FILE");
        assert_eq!(&items[1].value[..4], &3u32.to_be_bytes());
        assert_eq!(&items[1].value[4..8], &1u32.to_be_bytes());
        assert_eq!(items[2].flags, 0);
        x.insert("other.x".to_string(), vec![]);
        assert!(gather(&x, "/f").is_err());
    }
}
