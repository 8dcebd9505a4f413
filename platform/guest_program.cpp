#include "platform/guest_program.hpp"

#include "base/checked.hpp"
#include "base/file.hpp"
#include "format/elf_reader.hpp"
#include "guest/layout.h"
#include "platform/helper_program.hpp"

#include <algorithm>
#include <elf.h>
#include <vector>

namespace svmkit::platform {

Result<std::string> default_boot_loader_path() {
    return helper_program("SVMKIT_BOOT_LOADER", "svmkit-boot-loader.elf");
}

namespace {

// A checked program: where it goes, and what to copy there.
struct ParsedProgram {
    PlacedProgram placed;
    std::vector<std::byte> bytes;
    std::vector<Elf64_Phdr> loads;
};

// Why the ELF reader refused a program, in this file's words for the header
// checks it always made, else in the reader's (format/elf_reader.hpp).
std::string program_refusal(const format::ElfFailure& f) {
    using format::ElfError;
    switch (f.code) {
    case ElfError::truncated_header:
        return "shorter than an ELF header";
    case ElfError::bad_magic:
    case ElfError::wrong_class:
    case ElfError::wrong_endianness:
    case ElfError::wrong_machine:
    case ElfError::wrong_type:
        return "not an x86-64 ELF64 executable";
    case ElfError::bad_phentsize:
    case ElfError::bad_program_header_count:
        return "unexpected program headers";
    case ElfError::phdr_table_overflow:
    case ElfError::phdr_table_outside_file:
        return "program headers outside the file";
    default:
        return format::elf_failure_text(f);
    }
}

Result<ParsedProgram> parse_guest_program(std::uint64_t memory_size, const std::string& path,
                                          std::span<const AvoidRange> avoid) {
    constexpr std::uint64_t kMaxProgramSize = 64ull << 20;
    SVM_TRY(file, InputFile::open(path));
    SVM_TRY(bytes, file.read_all(kMaxProgramSize));
    auto bad = [&](std::string_view why) -> Error {
        return Error{ExitCode::malformed,
                     fmt::format("{}: not a usable guest program: {}", path, why)};
    };
    const format::ElfRules rules{
        .types = {ET_EXEC}, .machines = {EM_X86_64}, .max_program_headers = 16};
    auto elf = format::ElfFile::parse(bytes, rules);
    if (!elf)
        return svmkit::unexpected(bad(program_refusal(elf.error())));
    const Elf64_Ehdr& eh = elf->header();

    PlacedProgram placed;
    placed.path = path;
    placed.start = UINT64_MAX;
    std::vector<Elf64_Phdr> loads;
    const std::span<const Elf64_Phdr> phdrs = elf->program_headers();
    for (std::size_t i = 0; i < phdrs.size(); ++i) {
        const Elf64_Phdr& ph = phdrs[i];
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        const auto mem_end = checked_add(ph.p_paddr, ph.p_memsz);
        if (!elf->segment_bytes(i) || ph.p_filesz > ph.p_memsz || !mem_end ||
            *mem_end > memory_size)
            return svmkit::unexpected(
                bad(fmt::format("segment {} lies outside the file or guest RAM", i)));
        if (ranges_overlap(ph.p_paddr, ph.p_memsz, SVMKIT_IMAGE_BASE, 1))
            return svmkit::unexpected(bad("a segment covers the secure-image base"));
        for (const AvoidRange& a : avoid)
            if (ranges_overlap(ph.p_paddr, ph.p_memsz, a.base, a.size))
                return svmkit::unexpected(bad(fmt::format("segment {} overlaps {} [{:#x}, {:#x})",
                                                          i, a.name, a.base, a.base + a.size)));
        placed.start = std::min(placed.start, ph.p_paddr);
        placed.end = std::max(placed.end, *mem_end);
        loads.push_back(ph);
    }
    if (loads.empty())
        return svmkit::unexpected(bad("no loadable segment"));
    // Linked for the simulated guest's linear map: virtual = base + physical.
    if (eh.e_entry < SVMKIT_SIM_GUEST_VA_BASE)
        return svmkit::unexpected(bad("the entry point is not a guest virtual address"));
    placed.entry = eh.e_entry - SVMKIT_SIM_GUEST_VA_BASE;
    const bool entry_in_text = std::any_of(loads.begin(), loads.end(), [&](const Elf64_Phdr& ph) {
        return (ph.p_flags & PF_X) != 0 && placed.entry >= ph.p_paddr &&
               placed.entry - ph.p_paddr < ph.p_memsz;
    });
    if (!entry_in_text)
        return svmkit::unexpected(bad("the entry point lies in no executable segment"));
    return ParsedProgram{std::move(placed), std::move(bytes), std::move(loads)};
}

} // namespace

Result<PlacedProgram> guest_program_extent(std::uint64_t memory_size, const std::string& path,
                                           std::span<const AvoidRange> avoid) {
    SVM_TRY(parsed, parse_guest_program(memory_size, path, avoid));
    return parsed.placed;
}

Result<PlacedProgram> place_guest_program(GuestMemory& memory, const std::string& path,
                                          std::span<const AvoidRange> avoid) {
    SVM_TRY(parsed, parse_guest_program(memory.size(), path, avoid));
    const std::vector<std::byte>& bytes = parsed.bytes;
    for (const Elf64_Phdr& ph : parsed.loads) {
        SVM_CHECK(memory.write(ph.p_paddr, std::span(bytes).subspan(ph.p_offset, ph.p_filesz)));
        if (ph.p_memsz > ph.p_filesz) {
            SVM_TRY(rest, memory.range(ph.p_paddr + ph.p_filesz, ph.p_memsz - ph.p_filesz));
            std::fill(rest.begin(), rest.end(), std::byte{0});
        }
    }
    return parsed.placed;
}

} // namespace svmkit::platform
