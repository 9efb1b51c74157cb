//! The machine architecture an image is for (`arch` in the image spec),
//! and every value that follows from it: which packages fit, the UEFI
//! loader's name on the ESP, whether the disk gets a BIOS boot partition,
//! the `RegisterImage` architecture, the QEMU that boots it.
//!
//! Never: guessed from the packages or the host; the spec says it.

/// An image's architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: &'static [Arch] = &[Arch::X86_64, Arch::Aarch64];

    /// The name in specs and in rpm's `ARCH` tag.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    pub fn from_name(name: &str) -> Option<Arch> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Whether ingot can make images for it yet.
    pub fn supported(self) -> bool {
        matches!(self, Arch::X86_64)
    }

    /// Whether a package of rpm architecture `pkg` installs into an image
    /// of this one (its own, or `noarch`; no multilib).
    pub fn accepts(self, pkg: &str) -> bool {
        pkg == "noarch" || pkg == self.name()
    }

    /// The removable-media UEFI loader firmware looks for on the ESP
    /// (UEFI 2.10, §3.5.1.1).
    pub fn uefi_loader(self) -> &'static str {
        match self {
            Arch::X86_64 => "EFI/BOOT/BOOTX64.EFI",
            Arch::Aarch64 => "EFI/BOOT/BOOTAA64.EFI",
        }
    }

    /// Whether the disk carries a BIOS boot partition (GRUB's core image
    /// for legacy BIOS boot exists only on x86).
    pub fn bios_boot(self) -> bool {
        matches!(self, Arch::X86_64)
    }

    /// EC2 `RegisterImage`'s `Architecture`.
    pub fn ec2(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The QEMU system emulator for it.
    pub fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_fit_their_own_architecture_and_noarch_only() {
        assert!(Arch::X86_64.accepts("x86_64"));
        assert!(Arch::X86_64.accepts("noarch"));
        assert!(!Arch::X86_64.accepts("aarch64"));
        assert!(!Arch::X86_64.accepts("i686"));
        assert!(Arch::Aarch64.accepts("aarch64"));
        for a in Arch::ALL {
            assert_eq!(Arch::from_name(a.name()), Some(*a));
            assert_eq!(
                serde_json::to_string(a).unwrap(),
                format!("\"{}\"", a.name())
            );
        }
    }
}
