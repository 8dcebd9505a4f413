// Strict ELF64 validation and the segment plan (loader/elf_plan.h).
//
// Two passes over untrusted bytes: validate() reads every header field it will
// ever use and checks it, recording the PT_LOAD segments in a local plan;
// only when everything holds is the plan copied out. Fields are read byte by
// byte as little-endian (the file needs no alignment, and the host's byte
// order does not matter).
#include "loader/elf_plan.h"
#include "loader/error_text.h"
#include "loader/le_bytes.h"

#include "guest/memory.h"

#include <string.h>

namespace svmkit::loader {

namespace {

using detail::le16;
using detail::le32;
using detail::le64;
using guest::add_overflows;

// ELF constants (System V ABI, gABI "ELF Header", "Program Header").
constexpr uint64_t kEhdrSize = 64;
constexpr uint64_t kPhdrSize = 56;
constexpr uint64_t kShdrSize = 64;
constexpr uint8_t kElfClass64 = 2;
constexpr uint8_t kElfData2Lsb = 1;
constexpr uint8_t kEvCurrent = 1;
constexpr uint16_t kEtExec = 2;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtDynamic = 2;
constexpr uint32_t kPtInterp = 3;
constexpr uint32_t kPfX = 1;
constexpr uint32_t kPfW = 2;
constexpr uint32_t kShtNull = 0;
constexpr uint32_t kShtNobits = 8;

// [a, a_end) and [b, b_end) share a byte (empty ranges share none).
bool overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end) {
    return a < a_end && b < b_end && a < b_end && b < a_end;
}

// A table of `count` entries of `entry_size` bytes at `offset`: inside the
// file? Returns none, `overflow` or `outside`.
ElfError check_table(uint64_t offset, uint64_t count, uint64_t entry_size, uint64_t file_size,
                     ElfError overflow, ElfError outside) {
    // count and entry_size are 16-bit fields: their product cannot overflow.
    uint64_t end = 0;
    if (add_overflows(offset, count * entry_size, &end))
        return overflow;
    if (end > file_size)
        return outside;
    return ElfError::none;
}

// The fields of one program header the loader uses.
struct ProgramHeader {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

ProgramHeader read_phdr(const uint8_t* p) {
    return ProgramHeader{le32(p),      le32(p + 4),  le64(p + 8),  le64(p + 16),
                         le64(p + 24), le64(p + 32), le64(p + 40), le64(p + 48)};
}

// Reads n (<= kMaxElfRead) bytes at `offset`, which the caller has checked
// lie inside the file.
void fetch(const ElfSource& f, uint64_t offset, uint8_t* out, uint32_t n) {
    f.read(f.ctx, offset, out, n);
}

// The ELF header, into eh[0..kEhdrSize) once the file is known to hold one.
ElfError check_header(const ElfSource& f, const LoadConstraints& c, uint8_t* eh) {
    if (f.size == 0)
        return ElfError::empty_file;
    if (f.size < kEhdrSize)
        return ElfError::truncated_header;
    fetch(f, 0, eh, kEhdrSize);
    if (eh[0] != 0x7f || eh[1] != 'E' || eh[2] != 'L' || eh[3] != 'F')
        return ElfError::bad_magic;
    if (eh[4] != kElfClass64)
        return ElfError::wrong_class;
    if (eh[5] != kElfData2Lsb)
        return ElfError::wrong_endianness;
    if (eh[6] != kEvCurrent)
        return ElfError::bad_ident_version;
    if (le16(eh + 16) != kEtExec)
        return ElfError::wrong_type;
    if (le16(eh + 18) != c.machine)
        return ElfError::wrong_machine;
    if (le32(eh + 20) != kEvCurrent)
        return ElfError::bad_version;
    if (le16(eh + 52) != kEhdrSize)
        return ElfError::bad_ehsize;
    if (le16(eh + 54) != kPhdrSize)
        return ElfError::bad_phentsize;
    const uint16_t phnum = le16(eh + 56);
    if (phnum == 0)
        return ElfError::no_program_headers;
    if (phnum > kMaxProgramHeaders) // PN_XNUM (extended numbering) included
        return ElfError::too_many_program_headers;
    return check_table(le64(eh + 32), phnum, kPhdrSize, f.size, ElfError::phdr_table_overflow,
                       ElfError::phdr_table_outside_file);
}

// The section header table is not used for loading, but an image whose table
// points outside the file is malformed, and so is a section whose bytes do:
// tools that read it later (inspect, the ultravisor) must not be the first to
// notice.
ElfError check_sections(const ElfSource& f, const uint8_t* eh) {
    const uint64_t shoff = le64(eh + 40);
    const uint16_t shentsize = le16(eh + 58);
    const uint16_t shnum = le16(eh + 60);
    const uint16_t shstrndx = le16(eh + 62);
    if (shoff == 0 && shnum == 0)
        return shstrndx == 0 ? ElfError::none : ElfError::bad_shstrndx;
    // e_shnum == 0 with a table is ELF's extended numbering (count in section
    // 0): secure images never need it.
    if (shoff == 0 || shnum == 0)
        return ElfError::bad_section_table;
    if (shentsize != kShdrSize)
        return ElfError::bad_shentsize;
    if (shnum > kMaxSectionHeaders)
        return ElfError::too_many_section_headers;
    const ElfError e = check_table(shoff, shnum, kShdrSize, f.size, ElfError::shdr_table_overflow,
                                   ElfError::shdr_table_outside_file);
    if (e != ElfError::none)
        return e;
    if (shstrndx >= shnum) // SHN_XINDEX included
        return ElfError::bad_shstrndx;
    uint8_t sh[kShdrSize];
    for (uint32_t i = 0; i < shnum; ++i) {
        fetch(f, shoff + i * kShdrSize, sh, kShdrSize);
        const uint32_t type = le32(sh + 4);
        if (type == kShtNull || type == kShtNobits)
            continue;
        uint64_t end = 0;
        if (add_overflows(le64(sh + 24), le64(sh + 32), &end))
            return ElfError::section_offset_overflow;
        if (end > f.size)
            return ElfError::section_outside_file;
    }
    return ElfError::none;
}

// One PT_LOAD on its own: sizes, file range, memory range against RAM and
// reserved ranges. d->start/end get its memory range once it is known;
// d->reserved the range it overlaps.
ElfError check_segment(const ProgramHeader& ph, uint64_t file_size, const LoadConstraints& c,
                       ElfErrorDetail* d) {
    d->start = ph.paddr;
    d->end = ph.paddr + ph.memsz < ph.paddr ? ~uint64_t{0} : ph.paddr + ph.memsz;
    if (ph.memsz == 0)
        return ElfError::empty_segment;
    if (ph.align > 1 && (ph.align & (ph.align - 1)) != 0)
        return ElfError::bad_segment_alignment;
    uint64_t file_end = 0;
    if (add_overflows(ph.offset, ph.filesz, &file_end))
        return ElfError::segment_offset_overflow;
    if (file_end > file_size)
        return ElfError::segment_beyond_file;
    if (ph.filesz > ph.memsz)
        return ElfError::filesz_exceeds_memsz;
    if (ph.memsz > c.max_segment_size)
        return ElfError::segment_too_large;
    uint64_t mem_end = 0, vend = 0;
    if (add_overflows(ph.paddr, ph.memsz, &mem_end) || add_overflows(ph.vaddr, ph.memsz, &vend))
        return ElfError::segment_address_overflow;
    if (ph.paddr < c.ram_start || mem_end > c.ram_end)
        return ElfError::segment_outside_ram;
    const uint32_t reserved = c.reserved_count < kMaxReserved ? c.reserved_count : kMaxReserved;
    for (uint32_t r = 0; r < reserved; ++r)
        if (overlaps(ph.paddr, mem_end, c.reserved[r].start, c.reserved[r].end)) {
            d->reserved = r;
            return ElfError::segment_in_reserved;
        }
    return ElfError::none;
}

// The PT_LOAD segments, into *plan; vaddr[i] is segment i's p_vaddr.
ElfError plan_segments(const ElfSource& f, const uint8_t* eh, const LoadConstraints& c,
                       LoadPlan* plan, uint64_t vaddr[kMaxSegments], ElfErrorDetail* d) {
    const uint64_t phoff = le64(eh + 32);
    const uint16_t phnum = le16(eh + 56);
    uint8_t raw[kPhdrSize];
    plan->count = 0;
    for (uint32_t i = 0; i < phnum; ++i) {
        fetch(f, phoff + i * kPhdrSize, raw, kPhdrSize);
        const ProgramHeader ph = read_phdr(raw);
        if (ph.type == kPtInterp || ph.type == kPtDynamic)
            return ElfError::dynamic_image;
        if (ph.type != kPtLoad)
            continue; // notes, GNU_STACK...: nothing to load
        if (plan->count == kMaxSegments)
            return ElfError::too_many_segments;
        d->segment = plan->count;
        const ElfError e = check_segment(ph, f.size, c, d);
        if (e != ElfError::none)
            return e;
        *d = ElfErrorDetail{kNoIndex, 0, 0, kNoIndex, kNoIndex, 0, 0}; // this one is fine
        vaddr[plan->count] = ph.vaddr;
        plan->segments[plan->count++] = PlannedSegment{ph.offset,
                                                       ph.filesz,
                                                       ph.paddr,
                                                       ph.memsz,
                                                       (ph.flags & kPfX) != 0,
                                                       (ph.flags & kPfW) != 0};
    }
    return plan->count == 0 ? ElfError::no_loadable_segment : ElfError::none;
}

// Pairwise: memory first (the dangerous case: one segment would overwrite
// another after its digest was taken), then file bytes (harmless to copy
// twice, but no linker emits it, and it makes one segment's digest depend on
// another's bytes: a sign of a crafted file). The later segment is the one
// refused, the earlier the one it hits.
ElfError check_pairs(const LoadPlan& plan, ElfErrorDetail* d) {
    for (int pass = 0; pass < 2; ++pass)
        for (uint32_t j = 1; j < plan.count; ++j) {
            const PlannedSegment& b = plan.segments[j];
            for (uint32_t i = 0; i < j; ++i) {
                const PlannedSegment& a = plan.segments[i];
                const bool hit = pass == 0 ? overlaps(a.address, a.address + a.mem_size, b.address,
                                                      b.address + b.mem_size)
                                           : overlaps(a.file_offset, a.file_offset + a.file_size,
                                                      b.file_offset, b.file_offset + b.file_size);
                if (!hit)
                    continue;
                d->segment = j;
                d->start = b.address;
                d->end = b.address + b.mem_size;
                d->other_segment = i;
                d->other_start = a.address;
                d->other_end = a.address + a.mem_size;
                return pass == 0 ? ElfError::segments_overlap : ElfError::segment_files_overlap;
            }
        }
    return ElfError::none;
}

// Everything, into *plan (the caller's local copy).
ElfError validate(const ElfSource& f, const LoadConstraints& c, LoadPlan* plan,
                  uint64_t vaddr[kMaxSegments], ElfErrorDetail* d) {
    uint8_t eh[kEhdrSize];
    ElfError e = check_header(f, c, eh);
    if (e != ElfError::none)
        return e;
    e = check_sections(f, eh);
    if (e != ElfError::none)
        return e;
    e = plan_segments(f, eh, c, plan, vaddr, d);
    if (e != ElfError::none)
        return e;
    e = check_pairs(*plan, d);
    if (e != ElfError::none)
        return e;

    // The entry (virtual) must be inside an executable segment's loaded bytes
    // (not its zero fill); its physical address follows from that segment.
    const uint64_t entry = le64(eh + 24);
    for (uint32_t i = 0; i < plan->count; ++i) {
        const PlannedSegment& s = plan->segments[i];
        if (s.executable && entry >= vaddr[i] && entry - vaddr[i] < s.file_size) {
            plan->entry = s.address + (entry - vaddr[i]);
            return ElfError::none;
        }
    }
    return ElfError::entry_not_executable;
}

// A file in memory as an ElfSource.
struct MemoryFile {
    const uint8_t* bytes;
};

void read_memory(void* ctx, uint64_t offset, uint8_t* out, uint32_t n) {
    memcpy(out, static_cast<const MemoryFile*>(ctx)->bytes + offset, n);
}

// Name and message of each error (loader/error_text.h).
using detail::ErrorText;

ErrorText error_text(ElfError e) {
    switch (e) {
    case ElfError::none:
        return {"none", "no error"};
    case ElfError::empty_file:
        return {"empty_file", "empty file (zero length)"};
    case ElfError::truncated_header:
        return {"truncated_header", "file shorter than an ELF64 header"};
    case ElfError::bad_magic:
        return {"bad_magic", "not an ELF file (bad magic)"};
    case ElfError::wrong_class:
        return {"wrong_class", "not a 64-bit ELF file (wrong class)"};
    case ElfError::wrong_endianness:
        return {"wrong_endianness", "not a little-endian ELF file"};
    case ElfError::bad_ident_version:
        return {"bad_ident_version", "unknown ELF identification version"};
    case ElfError::wrong_type:
        return {"wrong_type", "not an executable ELF file (e_type is not ET_EXEC)"};
    case ElfError::wrong_machine:
        return {"wrong_machine", "ELF machine does not match the platform"};
    case ElfError::bad_version:
        return {"bad_version", "unknown ELF version (e_version)"};
    case ElfError::bad_ehsize:
        return {"bad_ehsize", "wrong ELF header size (e_ehsize)"};
    case ElfError::bad_phentsize:
        return {"bad_phentsize", "wrong program header size (e_phentsize)"};
    case ElfError::no_program_headers:
        return {"no_program_headers", "no program headers"};
    case ElfError::too_many_program_headers:
        return {"too_many_program_headers", "too many program headers"};
    case ElfError::phdr_table_overflow:
        return {"phdr_table_overflow", "program header table offset + size overflows"};
    case ElfError::phdr_table_outside_file:
        return {"phdr_table_outside_file", "program header table extends beyond the file"};
    case ElfError::bad_shentsize:
        return {"bad_shentsize", "wrong section header size (e_shentsize)"};
    case ElfError::too_many_section_headers:
        return {"too_many_section_headers", "too many section headers"};
    case ElfError::bad_section_table:
        return {"bad_section_table", "inconsistent section header table (e_shoff/e_shnum)"};
    case ElfError::shdr_table_overflow:
        return {"shdr_table_overflow", "section header table offset + size overflows"};
    case ElfError::shdr_table_outside_file:
        return {"shdr_table_outside_file", "section header table extends beyond the file"};
    case ElfError::bad_shstrndx:
        return {"bad_shstrndx", "section name table index out of range (e_shstrndx)"};
    case ElfError::section_offset_overflow:
        return {"section_offset_overflow", "section offset + size overflows"};
    case ElfError::section_outside_file:
        return {"section_outside_file", "section extends beyond the file"};
    case ElfError::dynamic_image:
        return {"dynamic_image",
                "dynamic image (PT_INTERP or PT_DYNAMIC): secure images are static"};
    case ElfError::too_many_segments:
        return {"too_many_segments", "too many loadable segments"};
    case ElfError::empty_segment:
        return {"empty_segment", "loadable segment with zero memory size"};
    case ElfError::bad_segment_alignment:
        return {"bad_segment_alignment", "segment alignment is not a power of two"};
    case ElfError::segment_offset_overflow:
        return {"segment_offset_overflow", "segment file offset + size overflows"};
    case ElfError::segment_beyond_file:
        return {"segment_beyond_file", "segment extends beyond the file"};
    case ElfError::filesz_exceeds_memsz:
        return {"filesz_exceeds_memsz", "segment file size exceeds its memory size"};
    case ElfError::segment_too_large:
        return {"segment_too_large", "segment memory size over the limit"};
    case ElfError::segment_address_overflow:
        return {"segment_address_overflow", "segment address + size overflows"};
    case ElfError::segment_outside_ram:
        return {"segment_outside_ram", "segment outside guest RAM"};
    case ElfError::segment_in_reserved:
        return {"segment_in_reserved", "segment overlaps a reserved memory range"};
    case ElfError::segments_overlap:
        return {"segments_overlap", "segments overlap in memory"};
    case ElfError::segment_files_overlap:
        return {"segment_files_overlap", "segments overlap in the file"};
    case ElfError::no_loadable_segment:
        return {"no_loadable_segment", "no loadable segment"};
    case ElfError::entry_not_executable:
        return {"entry_not_executable", "entry point outside every executable segment"};
    }
    return {"unknown", "unknown ELF error"};
}

} // namespace

const char* elf_error_message(ElfError e) {
    return error_text(e).message;
}

const char* elf_error_name(ElfError e) {
    return error_text(e).name;
}

ElfError plan_elf_load(const ElfSource& file, const LoadConstraints& c, LoadPlan* plan,
                       ElfErrorDetail* detail) {
    LoadPlan local;
    uint64_t vaddr[kMaxSegments];
    ElfErrorDetail d{kNoIndex, 0, 0, kNoIndex, kNoIndex, 0, 0};
    const ElfError e = validate(file, c, &local, vaddr, &d);
    if (e == ElfError::none)
        *plan = local;
    else if (detail != nullptr)
        *detail = d;
    return e;
}

ElfError plan_elf_load(const uint8_t* file, uint64_t file_size, const LoadConstraints& c,
                       LoadPlan* plan, ElfErrorDetail* detail) {
    MemoryFile m{file};
    return plan_elf_load(ElfSource{file_size, read_memory, &m}, c, plan, detail);
}

} // namespace svmkit::loader
