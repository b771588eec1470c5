//! What an ELF executable runs on, read from its headers: the machine (as an OCI
//! architecture name) and whether it needs a dynamic loader.

use object::elf::PT_INTERP;
use object::read::elf::{ElfFile, FileHeader, ProgramHeader};
use object::{Architecture, Endianness, Object};

use crate::descriptor::DescriptorError;

/// Facts about an ELF file that decide where it can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    /// OCI `architecture` (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Has a `PT_INTERP` program header: it needs a dynamic loader from the image.
    pub dynamic: bool,
}

/// Reads the machine and the interpreter header of `bytes`.
pub fn elf_facts(bytes: &[u8]) -> Result<ElfFacts, DescriptorError> {
    let not_elf = |e: object::Error| DescriptorError::NotElf(e.to_string());
    if !bytes.starts_with(b"\x7fELF") {
        return Err(DescriptorError::NotElf("missing \\x7fELF magic".into()));
    }
    // EI_CLASS: 1 = 32-bit, 2 = 64-bit.
    let (arch, dynamic, big_endian) = match bytes.get(4) {
        Some(1) => inspect(
            &ElfFile::<object::elf::FileHeader32<Endianness>>::parse(bytes).map_err(not_elf)?,
        ),
        Some(2) => inspect(
            &ElfFile::<object::elf::FileHeader64<Endianness>>::parse(bytes).map_err(not_elf)?,
        ),
        _ => return Err(DescriptorError::NotElf("unknown ELF class".into())),
    };
    let architecture = oci_architecture(arch, big_endian).ok_or_else(|| {
        DescriptorError::NotElf(format!("machine {arch:?} has no OCI architecture name"))
    })?;
    Ok(ElfFacts {
        architecture: architecture.to_string(),
        dynamic,
    })
}

fn inspect<H: FileHeader<Endian = Endianness>>(
    file: &ElfFile<'_, H>,
) -> (Architecture, bool, bool) {
    let endian = file.endian();
    let dynamic = file
        .elf_program_headers()
        .iter()
        .any(|ph| ph.p_type(endian) == PT_INTERP);
    (file.architecture(), dynamic, endian == Endianness::Big)
}

/// The names Go's GOARCH (and so OCI image configs) use.
fn oci_architecture(arch: Architecture, big_endian: bool) -> Option<&'static str> {
    Some(match arch {
        Architecture::X86_64 => "amd64",
        Architecture::Aarch64 => "arm64",
        Architecture::Arm => "arm",
        Architecture::I386 => "386",
        Architecture::Riscv64 => "riscv64",
        Architecture::PowerPc64 if big_endian => "ppc64",
        Architecture::PowerPc64 => "ppc64le",
        Architecture::S390x => "s390x",
        Architecture::LoongArch64 => "loong64",
        Architecture::Mips64 if big_endian => "mips64",
        Architecture::Mips64 => "mips64le",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::elf_for;

    #[test]
    fn machine_names_follow_oci() {
        let facts = elf_facts(&elf_for(Architecture::X86_64, None)).unwrap();
        assert_eq!(facts.architecture, "amd64");
        assert!(!facts.dynamic);
        let arm = elf_facts(&elf_for(Architecture::Aarch64, None)).unwrap();
        assert_eq!(arm.architecture, "arm64");
    }

    #[test]
    fn dynamic_executables_are_recognised() {
        // The test binary itself is a dynamically linked host executable.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let facts = elf_facts(&me).unwrap();
        assert!(facts.dynamic, "{facts:?}");
        assert!(elf_facts(b"#!/bin/sh\n").is_err());
    }
}
