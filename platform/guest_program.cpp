#include "platform/guest_program.hpp"

#include "base/checked.hpp"
#include "base/file.hpp"
#include "guest/layout.h"
#include "platform/helper_program.hpp"

#include <algorithm>
#include <cstring>
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

Result<ParsedProgram> parse_guest_program(std::uint64_t memory_size, const std::string& path,
                                          std::span<const AvoidRange> avoid) {
    constexpr std::uint64_t kMaxProgramSize = 64ull << 20;
    SVM_TRY(file, InputFile::open(path));
    SVM_TRY(bytes, file.read_all(kMaxProgramSize));
    auto bad = [&](std::string_view why) -> Error {
        return Error{ExitCode::malformed,
                     fmt::format("{}: not a usable guest program: {}", path, why)};
    };
    Elf64_Ehdr eh{};
    if (bytes.size() < sizeof eh)
        return svmkit::unexpected(bad("shorter than an ELF header"));
    std::memcpy(&eh, bytes.data(), sizeof eh);
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
        return svmkit::unexpected(bad("not an x86-64 ELF64 executable"));
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 16)
        return svmkit::unexpected(bad("unexpected program headers"));
    const auto ph_end = checked_add(eh.e_phoff, std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr));
    if (!ph_end || *ph_end > bytes.size())
        return svmkit::unexpected(bad("program headers outside the file"));

    PlacedProgram placed;
    placed.path = path;
    placed.start = UINT64_MAX;
    std::vector<Elf64_Phdr> loads;
    for (unsigned i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        std::memcpy(&ph, bytes.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        const auto file_end = checked_add(ph.p_offset, ph.p_filesz);
        const auto mem_end = checked_add(ph.p_paddr, ph.p_memsz);
        if (!file_end || *file_end > bytes.size() || ph.p_filesz > ph.p_memsz || !mem_end ||
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
