#include "format/stub_image.hpp"

#include "base/checked.hpp"
#include "format/elf_reader.hpp"
#include "guest/layout.h"

extern "C" {
extern const char svmkit_stub_x86_64_start[], svmkit_stub_x86_64_end[];
extern const char svmkit_stub_ppc64le_start[], svmkit_stub_ppc64le_end[];
}

namespace svmkit::format {

std::span<const std::byte> embedded_stub_elf(Arch arch) {
    const char* begin = arch == Arch::x86_64 ? svmkit_stub_x86_64_start : svmkit_stub_ppc64le_start;
    const char* end = arch == Arch::x86_64 ? svmkit_stub_x86_64_end : svmkit_stub_ppc64le_end;
    return std::as_bytes(std::span(begin, static_cast<std::size_t>(end - begin)));
}

Result<StubImage> embedded_stub(Arch arch) {
    return parse_stub_elf(embedded_stub_elf(arch), arch,
                          fmt::format("embedded {} stub", arch_name(arch)));
}

namespace {

// The stub's words for header refusals (what they said when libelf read the
// stub); the rest in the ELF reader's words (elf_reader.hpp).
std::string stub_refusal(const ElfFailure& f, Arch arch) {
    switch (f.code) {
    case ElfError::truncated_header:
    case ElfError::bad_magic:
    case ElfError::bad_version:
        return "not an ELF file";
    case ElfError::wrong_class:
    case ElfError::wrong_endianness:
    case ElfError::wrong_machine:
    case ElfError::wrong_type:
        return fmt::format("not a 64-bit {} executable", arch_name(arch));
    case ElfError::phdr_table_overflow:
    case ElfError::phdr_table_outside_file:
        return "unreadable program headers";
    case ElfError::shdr_table_overflow:
    case ElfError::shdr_table_outside_file:
        return "unreadable section header";
    default:
        return elf_failure_text(f);
    }
}

} // namespace

Result<StubImage> parse_stub_elf(std::span<const std::byte> bytes, Arch arch,
                                 const std::string& where) {
    const ElfRules rules{.types = {ET_EXEC}, .machines = {arch_elf_machine(arch)}};
    auto parsed = ElfFile::parse(bytes, rules);
    if (!parsed)
        return svmkit::unexpected(
            elf_error(where, parsed.error(), stub_refusal(parsed.error(), arch)));
    const ElfFile& elf = *parsed;
    const Elf64_Ehdr& eh = elf.header();

    const std::uint64_t va_base = arch_link_va_base(arch);
    const std::uint64_t link_address = va_base + SVMKIT_IMAGE_BASE;
    StubImage stub;
    stub.arch = arch;
    stub.base = SVMKIT_IMAGE_BASE;
    bool have_text = false;
    std::uint64_t highest_end = 0;

    const std::span<const Elf64_Phdr> phdrs = elf.program_headers();
    for (std::size_t i = 0; i < phdrs.size(); ++i) {
        const Elf64_Phdr& ph = phdrs[i];
        if (ph.p_type == PT_DYNAMIC || ph.p_type == PT_INTERP)
            return fail(ExitCode::malformed, "{}: the stub must not be dynamically linked", where);
        if (ph.p_type != PT_LOAD)
            continue;
        if (ph.p_flags & PF_W)
            return fail(ExitCode::malformed, "{}: segment {} is writable; the stub must not be",
                        where, i);
        if (ph.p_filesz != ph.p_memsz)
            return fail(ExitCode::malformed, "{}: segment {} has zero-fill (bss)", where, i);
        if (!elf.segment_bytes(i))
            return fail(ExitCode::malformed, "{}: segment {} lies outside the file", where, i);
        if (ph.p_vaddr < link_address)
            return fail(ExitCode::malformed, "{}: segment {} lies below the link address", where,
                        i);
        auto seg_end = checked_add(ph.p_vaddr, ph.p_memsz);
        if (!seg_end)
            return fail(ExitCode::malformed, "{}: segment {} address range overflows", where, i);
        std::vector<std::byte> data(bytes.begin() + static_cast<std::ptrdiff_t>(ph.p_offset),
                                    bytes.begin() +
                                        static_cast<std::ptrdiff_t>(ph.p_offset + ph.p_filesz));
        highest_end = std::max(highest_end, *seg_end);
        if (ph.p_flags & PF_X) {
            if (have_text || ph.p_vaddr != link_address)
                return fail(ExitCode::malformed,
                            "{}: expected one code segment at the link address {:#x}", where,
                            link_address);
            have_text = true;
            stub.text = std::move(data);
        } else {
            if (!stub.rodata.empty() || stub.rodata_address != 0)
                return fail(ExitCode::malformed, "{}: more than one read-only data segment", where);
            stub.rodata_address = ph.p_vaddr - va_base;
            stub.rodata = std::move(data);
        }
    }
    if (!have_text || stub.text.empty())
        return fail(ExitCode::malformed, "{}: no code segment", where);
    if (!stub.rodata.empty() && stub.rodata_address < stub.base + stub.text.size())
        return fail(ExitCode::malformed, "{}: the read-only data segment overlaps the code", where);
    if (eh.e_entry != link_address)
        return fail(ExitCode::malformed, "{}: entry point is not the first byte of the code",
                    where);

    for (const Elf64_Shdr& sh : elf.section_headers()) {
        if (sh.sh_type == SHT_REL || sh.sh_type == SHT_RELA || sh.sh_type == SHT_DYNAMIC ||
            sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_RELR)
            return fail(ExitCode::malformed, "{}: has relocation or dynamic sections", where);
        if ((sh.sh_flags & SHF_ALLOC) && (sh.sh_flags & SHF_WRITE) && sh.sh_size != 0)
            return fail(ExitCode::malformed, "{}: has a writable section", where);
    }
    auto stub_end = elf.symbol_value("__stub_end");
    if (!stub_end)
        return svmkit::unexpected(elf_error(where, stub_end.error()));
    if (!stub_end->has_value())
        return fail(ExitCode::malformed, "{}: no __stub_end symbol", where);
    stub.end = **stub_end - va_base;
    // Exactly the first 64 KiB boundary after the segments: the reader finds
    // the manifest there too (format/image_reader.cpp), from the manifest alone.
    const auto expected_end = checked_align_up(highest_end, SVMKIT_PAGE_SIZE);
    if (!expected_end || stub.end + va_base != *expected_end)
        return fail(ExitCode::malformed,
                    "{}: __stub_end {:#x} is misplaced (expected the first 64 KiB boundary after "
                    "the segments)",
                    where, stub.end);
    return stub;
}

} // namespace svmkit::format
