// Strict validation of an ELF64 secure image and the kexec-style segment plan
// that loads it (docs/loader.md, "ELF rules").
//
// The loader runs in a normal guest before the ultravisor has seen the image,
// so the image is untrusted input: plan_elf_load() checks the WHOLE file
// (header, every program header, the section header table and every section's
// file range, segment overlaps, RAM and reserved ranges, the entry point)
// before it writes anything to the plan, with checked arithmetic on every
// offset + size, and never reads outside [file, file + file_size). Each
// rejection has its own ElfError and message, so a user (and a test) can tell
// exactly why an image was refused.
//
// Segments are planned by p_paddr, the guest-physical load address: on the
// simulated platform the linker puts the guest-virtual address
// (SVMKIT_SIM_GUEST_VA_BASE + physical) in p_vaddr, on ppc64le the two are
// equal. The entry point (a virtual address, e_entry) is translated through
// the executable segment whose virtual range contains it.
//
// Freestanding: no libc beyond what guest/libc.cpp provides; the host build
// (svmkit_loader_host) runs the same source under the sanitizers.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace svmkit::loader {

// At most this many PT_LOAD segments (the plan and the digest table are fixed
// arrays; a secure image has 2 to 4).
constexpr uint32_t kMaxSegments = 16;
// At most this many program headers of any type.
constexpr uint32_t kMaxProgramHeaders = 64;
// At most this many section headers (a debug vmlinux has about 80).
constexpr uint32_t kMaxSectionHeaders = 1024;
constexpr uint32_t kMaxReserved = 32;

// ELF machine numbers the platforms use.
constexpr uint16_t kMachineX86_64 = 62; // EM_X86_64: the simulated platform
constexpr uint16_t kMachinePpc64 = 21;  // EM_PPC64: POWER

struct AddressRange {
    uint64_t start; // [start, end)
    uint64_t end;
};

// What the platform allows. Invariants the caller keeps: ram_start <= ram_end,
// every reserved range has start <= end, reserved_count <= kMaxReserved.
struct LoadConstraints {
    uint16_t machine;            // kMachineX86_64 or kMachinePpc64
    uint64_t ram_start, ram_end; // guest-physical RAM the segments must lie in
    // The loader itself, firmware, the FDT, stacks...: segments must avoid them.
    AddressRange reserved[kMaxReserved];
    uint32_t reserved_count;
    uint64_t max_segment_size; // per-segment p_memsz limit
};

struct PlannedSegment {
    uint64_t file_offset, file_size; // bytes copied from the file
    uint64_t address, mem_size;      // guest-physical destination (p_paddr); the rest zeroed
    bool executable;                 // PF_X
    bool writable;                   // PF_W
};

// Invariants after plan_elf_load() returned ElfError::none: 1 <= count <=
// kMaxSegments; segments in program-header order; every file range inside the
// file, no two file ranges share a byte; every memory range inside RAM, clear
// of every reserved range, no two share a byte; file_size <= mem_size <=
// max_segment_size; entry lies inside an executable segment's memory range.
struct LoadPlan {
    PlannedSegment segments[kMaxSegments];
    uint32_t count;
    uint64_t entry; // guest-physical
};

enum class ElfError : uint8_t {
    none,
    empty_file,               // zero-length file
    truncated_header,         // shorter than an ELF64 header
    bad_magic,                // not \x7fELF
    wrong_class,              // not ELFCLASS64
    wrong_endianness,         // not ELFDATA2LSB
    bad_ident_version,        // e_ident[EI_VERSION] != EV_CURRENT
    wrong_type,               // not ET_EXEC
    wrong_machine,            // e_machine differs from the platform's
    bad_version,              // e_version != EV_CURRENT
    bad_ehsize,               // e_ehsize != 64
    bad_phentsize,            // e_phentsize != 56
    no_program_headers,       // e_phnum == 0
    too_many_program_headers, // e_phnum > kMaxProgramHeaders
    phdr_table_overflow,      // e_phoff + table size wraps around
    phdr_table_outside_file,  // program header table beyond the end of the file
    bad_shentsize,            // section headers present, e_shentsize != 64
    too_many_section_headers, // e_shnum > kMaxSectionHeaders
    bad_section_table,        // e_shoff without e_shnum (extended numbering) or vice versa
    shdr_table_overflow,      // e_shoff + table size wraps around
    shdr_table_outside_file,  // section header table beyond the end of the file
    bad_shstrndx,             // e_shstrndx names no section
    section_offset_overflow,  // sh_offset + sh_size wraps around
    section_outside_file,     // a section's bytes beyond the end of the file
    dynamic_image,            // PT_INTERP or PT_DYNAMIC: secure images are static
    too_many_segments,        // more than kMaxSegments PT_LOAD
    empty_segment,            // PT_LOAD with p_memsz == 0
    bad_segment_alignment,    // p_align not 0 or a power of two
    segment_offset_overflow,  // p_offset + p_filesz wraps around
    segment_beyond_file,      // p_offset + p_filesz > file size
    filesz_exceeds_memsz,     // p_filesz > p_memsz
    segment_too_large,        // p_memsz > max_segment_size
    segment_address_overflow, // p_paddr + p_memsz (or p_vaddr + p_memsz) wraps around
    segment_outside_ram,      // [p_paddr, p_paddr + p_memsz) not inside RAM
    segment_in_reserved,      // overlaps a reserved range
    segments_overlap,         // two PT_LOAD share guest-physical memory
    segment_files_overlap,    // two PT_LOAD share file bytes
    no_loadable_segment,      // no PT_LOAD at all
    entry_not_executable,     // e_entry outside every executable PT_LOAD
};
constexpr uint32_t kElfErrorCount = static_cast<uint32_t>(ElfError::entry_not_executable) + 1;

// What a refusal is about, so that a message can name it: the PT_LOAD
// segment (its index in program-header order, as in the plan, and its memory
// range) and what it collides with: a reserved range (its index in
// LoadConstraints::reserved), another segment, or guest RAM's bounds.
constexpr uint32_t kNoIndex = 0xffffffffu;
struct ElfErrorDetail {
    uint32_t segment;                // kNoIndex: the refusal is not about one segment
    uint64_t start, end;             // the segment's [p_paddr, p_paddr + p_memsz) when known
    uint32_t reserved;               // segment_in_reserved: the range's index, else kNoIndex
    uint32_t other_segment;          // segments_overlap, segment_files_overlap: else kNoIndex
    uint64_t other_start, other_end; // the other segment's memory range
};

// Where plan_elf_load() reads the file from. It reads headers only (the ELF
// header, the program and the section header tables), at most
// kMaxElfRead bytes at a time and always inside [0, size): the guest hands it
// the image in memory, the CLI a reader that fetches those bytes from disk,
// so it never holds a whole image (`svmkit load --plan` on a 2 GiB file).
// `read` cannot fail: a reader that hits an I/O error fills zeros and
// remembers, and its owner reports the error whatever the verdict.
constexpr uint32_t kMaxElfRead = 64;
struct ElfSource {
    uint64_t size;
    void (*read)(void* ctx, uint64_t offset, uint8_t* out, uint32_t n);
    void* ctx;
};

// Short, distinct, human text ("segments overlap in memory"); never null.
const char* elf_error_message(ElfError e);
// A stable identifier ("segments_overlap") for scripts and JSON; never null.
const char* elf_error_name(ElfError e);

// Validates the whole file, then fills *plan. On any error *plan is left
// untouched and, when `detail` is not null, *detail says which segment and
// which range the error is about (kNoIndex where it is not about one). Never
// reads outside [0, size).
ElfError plan_elf_load(const ElfSource& file, const LoadConstraints& c, LoadPlan* plan,
                       ElfErrorDetail* detail = nullptr);

// The same for a file in memory, [file, file + file_size); file may be null
// only when file_size is 0.
ElfError plan_elf_load(const uint8_t* file, uint64_t file_size, const LoadConstraints& c,
                       LoadPlan* plan, ElfErrorDetail* detail = nullptr);

} // namespace svmkit::loader
