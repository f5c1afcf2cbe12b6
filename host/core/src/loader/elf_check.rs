//! The ELF headers of a plugin file, checked against the file's real size before anything maps
//! it: the dynamic loader maps each segment as its program header describes, and touching a
//! mapped page past the end of a truncated file kills the process with SIGBUS.
//!
//! Parsing uses the `object` crate's read-only ELF types (bounds-checked, widely used) over a
//! `ReadCache` of the open file: it reads only the header bytes it is asked for, through
//! ordinary reads, and never maps the file — mapping is exactly what a truncated file punishes.
//!
//! The checks: a size between [`MIN_LEN`] and [`MAX_LEN`]; the ELF magic; class, byte order and
//! machine those of this host; type `ET_DYN`; the program header table, every program
//! header's `p_offset + p_filesz`, and the section header table inside the file.

use std::fs::File;

use object::{
    Endianness, elf,
    read::{ReadCache, ReadRef, elf::FileHeader, elf::ProgramHeader},
};

#[cfg(target_pointer_width = "64")]
type HostHeader = elf::FileHeader64<Endianness>;
#[cfg(target_pointer_width = "32")]
type HostHeader = elf::FileHeader32<Endianness>;

/// The smallest file that can hold this host's ELF header.
const MIN_LEN: u64 = size_of::<HostHeader>() as u64;

/// The largest plugin file accepted: 1 GiB. Debug builds of the in-tree plugins are 5–10 MB;
/// anything this big is not a plausible plugin.
const MAX_LEN: u64 = 1 << 30;

const HOST_CLASS: elf::FileClass = if cfg!(target_pointer_width = "64") { elf::ELFCLASS64 } else { elf::ELFCLASS32 };
const HOST_DATA: elf::DataEncoding = if cfg!(target_endian = "little") { elf::ELFDATA2LSB } else { elf::ELFDATA2MSB };

/// `e_machine` of this host's own code; `None` on architectures not listed, where the machine
/// is left to the dynamic loader (which refuses a foreign one without mapping it).
const HOST_MACHINE: Option<(elf::Machine, &str)> = if cfg!(target_arch = "x86_64") {
    Some((elf::EM_X86_64, "x86_64"))
} else if cfg!(target_arch = "aarch64") {
    Some((elf::EM_AARCH64, "aarch64"))
} else if cfg!(target_arch = "x86") {
    Some((elf::EM_386, "x86"))
} else if cfg!(target_arch = "arm") {
    Some((elf::EM_ARM, "arm"))
} else if cfg!(any(target_arch = "riscv64", target_arch = "riscv32")) {
    Some((elf::EM_RISCV, "riscv"))
} else if cfg!(target_arch = "powerpc64") {
    Some((elf::EM_PPC64, "powerpc64"))
} else if cfg!(target_arch = "s390x") {
    Some((elf::EM_S390, "s390x"))
} else if cfg!(target_arch = "loongarch64") {
    Some((elf::EM_LOONGARCH, "loongarch64"))
} else {
    None
};

fn class_name(class: elf::FileClass) -> String {
    match class {
        elf::ELFCLASS32 => "32-bit".to_owned(),
        elf::ELFCLASS64 => "64-bit".to_owned(),
        other => format!("class-{}", other.0),
    }
}

fn data_name(data: elf::DataEncoding) -> String {
    match data {
        elf::ELFDATA2LSB => "little-endian".to_owned(),
        elf::ELFDATA2MSB => "big-endian".to_owned(),
        other => format!("byte-order-{}", other.0),
    }
}

fn segment_name(p_type: elf::ProgramType) -> String {
    match p_type {
        elf::PT_LOAD => "LOAD".to_owned(),
        elf::PT_DYNAMIC => "DYNAMIC".to_owned(),
        elf::PT_INTERP => "INTERP".to_owned(),
        elf::PT_NOTE => "NOTE".to_owned(),
        elf::PT_PHDR => "PHDR".to_owned(),
        elf::PT_TLS => "TLS".to_owned(),
        elf::PT_GNU_EH_FRAME => "GNU_EH_FRAME".to_owned(),
        elf::PT_GNU_STACK => "GNU_STACK".to_owned(),
        elf::PT_GNU_RELRO => "GNU_RELRO".to_owned(),
        elf::PT_GNU_PROPERTY => "GNU_PROPERTY".to_owned(),
        other => format!("type 0x{:x}", other.0),
    }
}

/// `offset + count * entry`, or a refusal naming `what` when it overflows or passes `len`.
fn within(what: &str, offset: u64, count: u64, entry: u64, len: u64) -> Result<(), String> {
    let end = count.checked_mul(entry).and_then(|size| size.checked_add(offset));
    match end {
        Some(end) if end <= len => Ok(()),
        Some(end) => Err(format!("truncated ELF file: {what} ends at byte {end} but the file has {len} bytes")),
        None => Err(format!("corrupt ELF file: {what} lies beyond any possible file size")),
    }
}

/// Checks the headers of the open plugin file `file`, `len` bytes long; the reason for a
/// refusal is one line.
#[allow(clippy::useless_conversion, reason = "ELF words are u64 here but u32 on 32-bit hosts")]
pub(super) fn check(file: &File, len: u64) -> Result<(), String> {
    if len > MAX_LEN {
        return Err(format!("file of {len} bytes is larger than the {MAX_LEN}-byte limit for a plugin"));
    }
    let cache = ReadCache::new(file);
    let data = &cache;
    let not_elf = || "not a loadable shared library (not an ELF file)".to_owned();
    // e_ident: magic (4 bytes), class, byte order, version, OS ABI, padding.
    let ident = data.read_bytes_at(0, 16).map_err(|()| not_elf())?;
    if ident[..4] != elf::ELFMAG {
        return Err(not_elf());
    }
    let (class, encoding) = (elf::FileClass(ident[4]), elf::DataEncoding(ident[5]));
    if class != HOST_CLASS {
        return Err(format!(
            "not built for this host: {} ELF, this host runs {}",
            class_name(class),
            class_name(HOST_CLASS)
        ));
    }
    if encoding != HOST_DATA {
        return Err(format!(
            "not built for this host: {} ELF, this host is {}",
            data_name(encoding),
            data_name(HOST_DATA)
        ));
    }
    if len < MIN_LEN {
        return Err(format!("truncated ELF file: {len} bytes, shorter than the {MIN_LEN}-byte ELF header"));
    }
    let header = HostHeader::parse(data).map_err(|e| format!("corrupt ELF header: {e}"))?;
    let endian = header.endian().map_err(|e| format!("corrupt ELF header: {e}"))?;
    if let Some((machine, name)) = HOST_MACHINE
        && header.e_machine(endian) != machine
    {
        return Err(format!(
            "not built for this host: ELF machine {}, this host is {name} (machine {})",
            header.e_machine(endian).0,
            machine.0
        ));
    }
    if header.e_type(endian) != elf::ET_DYN {
        return Err(format!(
            "not a shared library: ELF type {}, a plugin has type ET_DYN (3)",
            header.e_type(endian).0
        ));
    }

    // Program headers first: they say what the dynamic loader will map. (`phnum` may be stored
    // in section header 0 when it overflows; `object` reads that bounds-checked.)
    let phoff: u64 = header.e_phoff(endian).into();
    let phnum = header.phnum(endian, data).map_err(|e| format!("corrupt ELF header: {e}"))?;
    if phoff == 0 || phnum == 0 {
        return Err("not a shared library: no program headers".to_owned());
    }
    within("the program header table", phoff, phnum.into(), header.e_phentsize(endian).into(), len)?;
    let program_headers = header.program_headers(endian, data).map_err(|e| format!("corrupt ELF header: {e}"))?;
    for (index, ph) in program_headers.iter().enumerate() {
        let what = format!("program header {index} ({})", segment_name(ph.p_type(endian)));
        within(&what, ph.p_offset(endian).into(), 1, ph.p_filesz(endian).into(), len)?;
    }

    // The section header table is not mapped, but a file cut short before it is not the file
    // that was built (and its entry 0 may hold the real section count).
    let shoff: u64 = header.e_shoff(endian).into();
    let shentsize = u64::from(header.e_shentsize(endian));
    if shoff != 0 {
        if header.e_shnum(endian) == 0 {
            // Extended numbering: the count is in entry 0, which must be there to be read.
            within("the section header table", shoff, 1, shentsize, len)?;
        }
        let shnum = header.shnum(endian, data).map_err(|e| format!("corrupt ELF header: {e}"))?;
        within("the section header table", shoff, shnum.into(), shentsize, len)?;
        header.section_headers(endian, data).map_err(|e| format!("corrupt ELF header: {e}"))?;
    }
    Ok(())
}
