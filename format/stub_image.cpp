#include "format/stub_image.hpp"

#include "base/checked.hpp"
#include "format/elf_handle.hpp"
#include "guest/layout.h"

#include <cstring>

extern "C" {
extern const char svmkit_stub_x86_64_start[], svmkit_stub_x86_64_end[];
extern const char svmkit_stub_ppc64le_start[], svmkit_stub_ppc64le_end[];
}

namespace svmkit::format {

bool libelf_init() {
    static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
    return ok;
}

std::span<const std::byte> embedded_stub_elf(Arch arch) {
    const char* begin = arch == Arch::x86_64 ? svmkit_stub_x86_64_start : svmkit_stub_ppc64le_start;
    const char* end = arch == Arch::x86_64 ? svmkit_stub_x86_64_end : svmkit_stub_ppc64le_end;
    return std::as_bytes(std::span(begin, static_cast<std::size_t>(end - begin)));
}

Result<StubImage> embedded_stub(Arch arch) {
    return parse_stub_elf(embedded_stub_elf(arch), arch,
                          fmt::format("embedded {} stub", arch_name(arch)));
}

Result<StubImage> parse_stub_elf(std::span<const std::byte> bytes, Arch arch,
                                 const std::string& where) {
    if (!libelf_init())
        return fail(ExitCode::io, "libelf initialisation failed: {}", libelf_error());
    std::vector<char> copy(reinterpret_cast<const char*>(bytes.data()),
                           reinterpret_cast<const char*>(bytes.data()) + bytes.size());
    ElfPtr elf(elf_memory(copy.data(), copy.size()));
    GElf_Ehdr eh;
    if (!elf || elf_kind(elf.get()) != ELF_K_ELF || gelf_getehdr(elf.get(), &eh) == nullptr)
        return fail(ExitCode::malformed, "{}: not an ELF file", where);
    if (gelf_getclass(elf.get()) != ELFCLASS64 || eh.e_machine != arch_elf_machine(arch) ||
        eh.e_type != ET_EXEC)
        return fail(ExitCode::malformed, "{}: not a 64-bit {} executable", where, arch_name(arch));

    const std::uint64_t va_base = arch_link_va_base(arch);
    const std::uint64_t link_address = va_base + SVMKIT_IMAGE_BASE;
    StubImage stub;
    stub.arch = arch;
    stub.base = SVMKIT_IMAGE_BASE;
    bool have_text = false;
    std::uint64_t highest_end = 0;

    std::size_t phnum = 0;
    if (elf_getphdrnum(elf.get(), &phnum) != 0)
        return fail(ExitCode::malformed, "{}: unreadable program headers", where);
    for (std::size_t i = 0; i < phnum; ++i) {
        GElf_Phdr ph;
        if (gelf_getphdr(elf.get(), static_cast<int>(i), &ph) == nullptr)
            return fail(ExitCode::malformed, "{}: unreadable program header {}", where, i);
        if (ph.p_type == PT_DYNAMIC || ph.p_type == PT_INTERP)
            return fail(ExitCode::malformed, "{}: the stub must not be dynamically linked", where);
        if (ph.p_type != PT_LOAD)
            continue;
        if (ph.p_flags & PF_W)
            return fail(ExitCode::malformed, "{}: segment {} is writable; the stub must not be",
                        where, i);
        if (ph.p_filesz != ph.p_memsz)
            return fail(ExitCode::malformed, "{}: segment {} has zero-fill (bss)", where, i);
        if (ph.p_offset > bytes.size() || ph.p_filesz > bytes.size() - ph.p_offset)
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

    bool have_end = false;
    for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn != nullptr;
         scn = elf_nextscn(elf.get(), scn)) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == nullptr)
            return fail(ExitCode::malformed, "{}: unreadable section header", where);
        if (sh.sh_type == SHT_REL || sh.sh_type == SHT_RELA || sh.sh_type == SHT_DYNAMIC ||
            sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_RELR)
            return fail(ExitCode::malformed, "{}: has relocation or dynamic sections", where);
        if ((sh.sh_flags & SHF_ALLOC) && (sh.sh_flags & SHF_WRITE) && sh.sh_size != 0)
            return fail(ExitCode::malformed, "{}: has a writable section", where);
        if (sh.sh_type != SHT_SYMTAB)
            continue;
        Elf_Data* data = elf_getdata(scn, nullptr);
        const std::size_t count = sh.sh_entsize != 0 ? sh.sh_size / sh.sh_entsize : 0;
        for (std::size_t i = 0; data != nullptr && i < count; ++i) {
            GElf_Sym sym;
            if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr)
                continue;
            const char* name = elf_strptr(elf.get(), sh.sh_link, sym.st_name);
            if (name != nullptr && std::strcmp(name, "__stub_end") == 0) {
                stub.end = sym.st_value - va_base;
                have_end = true;
            }
        }
    }
    if (!have_end)
        return fail(ExitCode::malformed, "{}: no __stub_end symbol", where);
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
