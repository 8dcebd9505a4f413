// Fuzz target: the host's ELF reader (format/elf_reader.hpp). The input is
// the file. Beyond "no crash, no out-of-bounds read" the target checks what
// the reader promises for a file it accepts: the header tables inside the
// file, every name inside the name table, and every range segment_bytes() or
// section_bytes() returns inside the file; a violation aborts.
#include "format/elf_reader.hpp"

#include <cstdlib>

namespace {

using namespace svmkit::format;

void require(bool ok) {
    if (!ok)
        std::abort();
}

bool inside(std::uint64_t offset, std::uint64_t size, std::uint64_t file_size) {
    return offset <= file_size && size <= file_size - offset;
}

void exercise(std::span<const std::byte> bytes, const ElfRules& rules) {
    auto elf = ElfFile::parse(bytes, rules);
    if (!elf) {
        require(!elf_failure_text(elf.error()).empty());
        return;
    }
    const Elf64_Ehdr& eh = elf->header();
    require(eh.e_phnum >= 1 && eh.e_phnum <= rules.max_program_headers);
    require(inside(eh.e_phoff, std::uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), bytes.size()));
    require(inside(eh.e_shoff, std::uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr), bytes.size()));
    for (std::size_t i = 0; i < elf->program_headers().size(); ++i)
        if (auto r = elf->segment_bytes(i))
            require(inside(r->offset, r->size, bytes.size()));
    for (std::size_t i = 0; i < elf->section_headers().size(); ++i) {
        if (auto r = elf->section_bytes(i))
            require(inside(r->offset, r->size, bytes.size()));
        const std::string_view name = elf->section_name(i);
        if (!name.empty())
            require(elf->section(name) != nullptr);
    }
    (void)elf->symbol_value("__stub_end");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = std::as_bytes(std::span(data, size));
    // A secure image's rules (names read) and a kernel's (any machine, no names).
    exercise(bytes, ElfRules{.types = {ET_EXEC},
                             .machines = {EM_X86_64, EM_PPC64},
                             .max_program_headers = 16,
                             .min_section_headers = 1,
                             .max_section_headers = 16,
                             .section_names = true,
                             .max_name_table_size = 4096});
    ElfRules kernel;
    kernel.types = {ET_EXEC, ET_DYN};
    exercise(bytes, kernel);
    return 0;
}
