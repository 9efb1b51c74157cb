//! File capabilities: rpm stores them as text (`cap_net_bind_service=ep`,
//! libcap's `cap_to_text` form); the kernel wants the `security.capability`
//! xattr, a `vfs_cap_data` (revision 2: le32 magic with the effective flag,
//! then permitted and inheritable as two le32 pairs). The names and numbers
//! are Linux's `include/uapi/linux/capability.h`.

const NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x0000_0001;

fn cap_number(name: &str) -> Option<u32> {
    let n = name.trim().to_ascii_lowercase();
    let n = n.strip_prefix("cap_").unwrap_or(&n);
    NAMES.iter().position(|c| *c == n).map(|i| i as u32)
}

/// The `security.capability` value for libcap text such as
/// `cap_net_bind_service,cap_net_raw=ep` or `cap_sys_admin+eip`.
pub fn xattr_from_text(text: &str) -> Result<Vec<u8>, String> {
    let mut permitted: u64 = 0;
    let mut inheritable: u64 = 0;
    let mut effective: u64 = 0;
    for clause in text.split_whitespace() {
        let split = clause
            .find(['=', '+', '-'])
            .ok_or_else(|| format!("capability clause `{clause}` has no =, + or -"))?;
        let (names, mut ops) = clause.split_at(split);
        let set: u64 = if names.is_empty() || names == "all" {
            (1u64 << NAMES.len()) - 1
        } else {
            let mut s = 0u64;
            for n in names.split(',') {
                let bit = cap_number(n).ok_or_else(|| format!("unknown capability `{n}`"))?;
                s |= 1 << bit;
            }
            s
        };
        while let Some(op) = ops.chars().next() {
            let rest = &ops[1..];
            let flags_len = rest.find(['=', '+', '-']).unwrap_or(rest.len());
            let flags = &rest[..flags_len];
            if op == '=' {
                permitted &= !set;
                inheritable &= !set;
                effective &= !set;
            }
            for f in flags.chars() {
                let target = match f {
                    'p' => &mut permitted,
                    'i' => &mut inheritable,
                    'e' => &mut effective,
                    _ => return Err(format!("unknown capability flag `{f}` in `{clause}`")),
                };
                if op == '-' {
                    *target &= !set;
                } else {
                    *target |= set;
                }
            }
            ops = &rest[flags_len..];
        }
    }
    let magic = VFS_CAP_REVISION_2
        | if effective != 0 {
            VFS_CAP_FLAGS_EFFECTIVE
        } else {
            0
        };
    let mut v = Vec::with_capacity(20);
    v.extend_from_slice(&magic.to_le_bytes());
    v.extend_from_slice(&(permitted as u32).to_le_bytes());
    v.extend_from_slice(&(inheritable as u32).to_le_bytes());
    v.extend_from_slice(&((permitted >> 32) as u32).to_le_bytes());
    v.extend_from_slice(&((inheritable >> 32) as u32).to_le_bytes());
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_bind_service_ep_becomes_revision_2_data() {
        let v = xattr_from_text("cap_net_bind_service=ep").unwrap();
        assert_eq!(v.len(), 20);
        assert_eq!(&v[0..4], &[1, 0, 0, 2]);
        assert_eq!(u32::from_le_bytes(v[4..8].try_into().unwrap()), 1 << 10);
        assert_eq!(&v[8..20], &[0; 12]);
    }

    #[test]
    fn high_capabilities_go_to_the_second_word() {
        let v = xattr_from_text("cap_bpf,cap_chown+p").unwrap();
        assert_eq!(&v[0..4], &[0, 0, 0, 2], "no effective flag");
        assert_eq!(u32::from_le_bytes(v[4..8].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(v[12..16].try_into().unwrap()),
            1 << (39 - 32)
        );
    }

    #[test]
    fn bad_text_is_an_error() {
        assert!(xattr_from_text("cap_nope=ep").is_err());
        assert!(xattr_from_text("cap_chown").is_err());
        assert!(xattr_from_text("cap_chown=x").is_err());
    }

    #[test]
    fn real_setcap_agrees_when_available() {
        // getcap/setcap from libcap2-bin, as an independent judge.
        let Some(setcap) = crate::testutil::judge("setcap") else {
            return;
        };
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("x");
        std::fs::write(&f, b"").unwrap();
        for text in [
            "cap_net_bind_service=ep",
            "cap_net_raw,cap_sys_admin+p",
            "cap_bpf=eip",
        ] {
            let ok = std::process::Command::new(&setcap)
                .arg(text)
                .arg(&f)
                .status();
            if !ok.is_ok_and(|s| s.success()) {
                crate::testutil::cannot_run(
                    "real_setcap_agrees_when_available",
                    "setcap cannot set file capabilities here",
                    "run as root on a filesystem with security.* xattrs (not every \
                     overlay or tmpfs has them); TMPDIR may name another one",
                );
                return;
            }
            let real = xattr::get(&f, "security.capability").unwrap().unwrap();
            let ours = xattr_from_text(text).unwrap();
            // setcap may write revision 3 (with a root uid) on some kernels;
            // compare the capability words.
            assert_eq!(&real[4..20], &ours[4..20], "{text}");
            assert_eq!(real[0] & 1, ours[0] & 1, "{text}: effective flag");
        }
    }
}
