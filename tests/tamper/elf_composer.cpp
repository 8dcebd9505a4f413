#include "tamper/elf_composer.hpp"

#include "format/image_layout.hpp"
#include "format/manifest.hpp"

#include <algorithm>
#include <cstring>
#include <elf.h>

namespace svmkit::tamper {

namespace {

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) {
    return (v + a - 1) / a * a;
}

template <typename T>
void put(std::vector<std::byte>& out, std::uint64_t offset, const T& v) {
    std::memcpy(out.data() + offset, &v, sizeof v);
}

} // namespace

ComposedImage decompose(const format::SecureImage& image, std::span<const std::byte> bytes) {
    ComposedImage c;
    c.arch = image.arch;
    c.image_base = image.manifest.image_base;
    c.entry = image.manifest.entry;
    std::vector<format::ImageSection> all = image.sections;
    all.push_back(image.manifest_section);
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
    for (const format::ImageSection& s : all) {
        const auto from = bytes.subspan(s.offset, s.size);
        c.sections.push_back({s.name, s.address, {from.begin(), from.end()}, s.executable});
    }
    return c;
}

void replace_section(ComposedImage& image, const std::string& name, const LoadedSection& with) {
    for (LoadedSection& s : image.sections)
        if (s.name == name) {
            s.bytes = with.bytes;
            s.executable = with.executable;
        }
}

void relayout(ComposedImage& image) {
    bool after_manifest = false;
    std::uint64_t cursor = 0;
    for (LoadedSection& s : image.sections) {
        if (after_manifest)
            s.address = cursor;
        if (s.name == format::kManifestSection)
            after_manifest = true;
        cursor = align_up(s.address + s.bytes.size(), format::kPageSize);
    }
}

std::vector<std::byte> compose(const ComposedImage& image) {
    const std::uint64_t va_base = format::arch_link_va_base(image.arch);
    std::string names(1, '\0');
    std::vector<std::uint32_t> name_at;
    std::uint64_t end_of_loaded = format::kFirstLoadOffset;
    for (const LoadedSection& s : image.sections) {
        name_at.push_back(static_cast<std::uint32_t>(names.size()));
        names += s.name;
        names.push_back('\0');
        end_of_loaded = std::max(
            end_of_loaded, format::image_file_offset(image.image_base, s.address) + s.bytes.size());
    }
    const auto strtab_name = static_cast<std::uint32_t>(names.size());
    names += ".shstrtab";
    names.push_back('\0');

    const std::size_t n = image.sections.size();
    const std::uint64_t shoff = align_up(end_of_loaded + names.size(), 8);
    std::vector<std::byte> out(shoff + (n + 2) * sizeof(Elf64_Shdr));

    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh.e_type = ET_EXEC;
    eh.e_machine = format::arch_elf_machine(image.arch);
    eh.e_version = EV_CURRENT;
    eh.e_entry = va_base + image.entry;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_shoff = shoff;
    eh.e_flags = format::arch_elf_flags(image.arch);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<Elf64_Half>(n);
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = static_cast<Elf64_Half>(n + 2);
    eh.e_shstrndx = static_cast<Elf64_Half>(n + 1);
    put(out, 0, eh);

    for (std::size_t i = 0; i < n; ++i) {
        const LoadedSection& s = image.sections[i];
        const std::uint64_t offset = format::image_file_offset(image.image_base, s.address);
        Elf64_Phdr ph{};
        ph.p_type = PT_LOAD;
        ph.p_flags = PF_R | (s.executable ? PF_X : 0);
        ph.p_offset = offset;
        ph.p_vaddr = va_base + s.address;
        ph.p_paddr = s.address;
        ph.p_filesz = s.bytes.size();
        ph.p_memsz = s.bytes.size();
        ph.p_align = format::kPageSize;
        put(out, sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), ph);

        Elf64_Shdr sh{};
        sh.sh_name = name_at[i];
        sh.sh_type = SHT_PROGBITS;
        sh.sh_flags = SHF_ALLOC | (s.executable ? SHF_EXECINSTR : 0);
        sh.sh_addr = va_base + s.address;
        sh.sh_offset = offset;
        sh.sh_size = s.bytes.size();
        sh.sh_addralign = format::kPageSize;
        put(out, shoff + (i + 1) * sizeof(Elf64_Shdr), sh);
        std::copy(s.bytes.begin(), s.bytes.end(),
                  out.begin() + static_cast<std::ptrdiff_t>(offset));
    }
    Elf64_Shdr strsh{};
    strsh.sh_name = strtab_name;
    strsh.sh_type = SHT_STRTAB;
    strsh.sh_offset = end_of_loaded;
    strsh.sh_size = names.size();
    strsh.sh_addralign = 1;
    put(out, shoff + (n + 1) * sizeof(Elf64_Shdr), strsh);
    std::memcpy(out.data() + end_of_loaded, names.data(), names.size());
    return out;
}

} // namespace svmkit::tamper
