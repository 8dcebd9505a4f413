#include "tamper/image_map.hpp"

#include "format/image_layout.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <elf.h>

namespace svmkit::tamper {

std::string_view region_kind_name(RegionKind k) {
    switch (k) {
    case RegionKind::elf_header:
        return "ELF header";
    case RegionKind::program_header:
        return "program headers";
    case RegionKind::section_header:
        return "section headers";
    case RegionKind::section_names:
        return "section name table";
    case RegionKind::section:
        return "section";
    case RegionKind::manifest_padding:
        return "manifest padding";
    case RegionKind::file_padding:
        return "file padding";
    }
    return "?";
}

namespace {

struct Field {
    const char* name;
    std::size_t offset;
    std::size_t size;
};

#define SVMKIT_FIELD(type, member)                                                                 \
    Field {                                                                                        \
#member, offsetof(type, member), sizeof(type::member)                                      \
    }

// e_ident is split into its parts: each is checked for its own reason.
const Field kEhdrFields[] = {
    {"e_ident magic", 0, 4},
    {"e_ident class", EI_CLASS, 1},
    {"e_ident data", EI_DATA, 1},
    {"e_ident version", EI_VERSION, 1},
    {"e_ident osabi", EI_OSABI, 1},
    {"e_ident abiversion", EI_ABIVERSION, 1},
    {"e_ident padding", EI_PAD, EI_NIDENT - EI_PAD},
    SVMKIT_FIELD(Elf64_Ehdr, e_type),
    SVMKIT_FIELD(Elf64_Ehdr, e_machine),
    SVMKIT_FIELD(Elf64_Ehdr, e_version),
    SVMKIT_FIELD(Elf64_Ehdr, e_entry),
    SVMKIT_FIELD(Elf64_Ehdr, e_phoff),
    SVMKIT_FIELD(Elf64_Ehdr, e_shoff),
    SVMKIT_FIELD(Elf64_Ehdr, e_flags),
    SVMKIT_FIELD(Elf64_Ehdr, e_ehsize),
    SVMKIT_FIELD(Elf64_Ehdr, e_phentsize),
    SVMKIT_FIELD(Elf64_Ehdr, e_phnum),
    SVMKIT_FIELD(Elf64_Ehdr, e_shentsize),
    SVMKIT_FIELD(Elf64_Ehdr, e_shnum),
    SVMKIT_FIELD(Elf64_Ehdr, e_shstrndx),
};

const Field kPhdrFields[] = {
    SVMKIT_FIELD(Elf64_Phdr, p_type),   SVMKIT_FIELD(Elf64_Phdr, p_flags),
    SVMKIT_FIELD(Elf64_Phdr, p_offset), SVMKIT_FIELD(Elf64_Phdr, p_vaddr),
    SVMKIT_FIELD(Elf64_Phdr, p_paddr),  SVMKIT_FIELD(Elf64_Phdr, p_filesz),
    SVMKIT_FIELD(Elf64_Phdr, p_memsz),  SVMKIT_FIELD(Elf64_Phdr, p_align),
};

const Field kShdrFields[] = {
    SVMKIT_FIELD(Elf64_Shdr, sh_name),      SVMKIT_FIELD(Elf64_Shdr, sh_type),
    SVMKIT_FIELD(Elf64_Shdr, sh_flags),     SVMKIT_FIELD(Elf64_Shdr, sh_addr),
    SVMKIT_FIELD(Elf64_Shdr, sh_offset),    SVMKIT_FIELD(Elf64_Shdr, sh_size),
    SVMKIT_FIELD(Elf64_Shdr, sh_link),      SVMKIT_FIELD(Elf64_Shdr, sh_info),
    SVMKIT_FIELD(Elf64_Shdr, sh_addralign), SVMKIT_FIELD(Elf64_Shdr, sh_entsize),
};

#undef SVMKIT_FIELD

template <typename T>
T read_struct(std::span<const std::byte> bytes, std::uint64_t offset) {
    T v{};
    std::memcpy(&v, bytes.data() + offset, sizeof v);
    return v;
}

} // namespace

const Region& ImageMap::at(std::uint64_t offset) const {
    auto it = std::upper_bound(regions_.begin(), regions_.end(), offset,
                               [](std::uint64_t o, const Region& r) { return o < r.offset; });
    return *(it - 1);
}

Result<ImageMap> ImageMap::map(const format::SecureImage& image, std::span<const std::byte> bytes) {
    std::vector<Region> found;
    const auto eh = read_struct<Elf64_Ehdr>(bytes, 0);
    for (const Field& f : kEhdrFields)
        found.push_back({RegionKind::elf_header, f.name, "", f.offset, f.size});
    for (std::size_t i = 0; i < eh.e_phnum; ++i)
        for (const Field& f : kPhdrFields)
            found.push_back({RegionKind::program_header,
                             fmt::format("program header {} {}", i, f.name), "",
                             eh.e_phoff + i * sizeof(Elf64_Phdr) + f.offset, f.size});

    const auto strsh =
        read_struct<Elf64_Shdr>(bytes, eh.e_shoff + eh.e_shstrndx * sizeof(Elf64_Shdr));
    auto section_name = [&](const Elf64_Shdr& sh) -> std::string {
        if (sh.sh_type == SHT_NULL)
            return "null";
        const char* names = reinterpret_cast<const char*>(bytes.data() + strsh.sh_offset);
        return names + sh.sh_name;
    };
    for (std::size_t i = 0; i < eh.e_shnum; ++i) {
        const std::uint64_t at = eh.e_shoff + i * sizeof(Elf64_Shdr);
        const std::string name = section_name(read_struct<Elf64_Shdr>(bytes, at));
        for (const Field& f : kShdrFields)
            found.push_back({RegionKind::section_header,
                             fmt::format("section header {} ({}) {}", i, name, f.name), "",
                             at + f.offset, f.size});
    }
    found.push_back({RegionKind::section_names, ".shstrtab", "", strsh.sh_offset, strsh.sh_size});

    for (const format::ImageSection& s : image.sections)
        found.push_back({RegionKind::section, s.name, s.name, s.offset, s.size});
    const format::ImageSection& ms = image.manifest_section;
    const std::uint64_t tree = image.manifest_blob.size();
    found.push_back({RegionKind::section, ms.name + " (device tree)", ms.name, ms.offset, tree});
    if (tree < ms.size)
        found.push_back({RegionKind::manifest_padding, ms.name + " (zero padding)", ms.name,
                         ms.offset + tree, ms.size - tree});

    std::sort(found.begin(), found.end(),
              [](const Region& a, const Region& b) { return a.offset < b.offset; });
    ImageMap m;
    m.file_size_ = bytes.size();
    std::uint64_t cursor = 0;
    for (Region& r : found) {
        if (r.size == 0)
            continue;
        if (r.offset < cursor)
            return fail(ExitCode::malformed, "image map: {} at {:#x} overlaps the region before",
                        r.name, r.offset);
        if (r.offset > cursor)
            m.regions_.push_back({RegionKind::file_padding,
                                  fmt::format("file padding {:#x}..{:#x}", cursor, r.offset), "",
                                  cursor, r.offset - cursor});
        cursor = r.end();
        m.regions_.push_back(std::move(r));
    }
    if (cursor > bytes.size())
        return fail(ExitCode::malformed, "image map: regions run past the end of the file");
    if (cursor < bytes.size())
        m.regions_.push_back({RegionKind::file_padding,
                              fmt::format("file padding {:#x}..{:#x}", cursor, bytes.size()), "",
                              cursor, bytes.size() - cursor});
    return m;
}

} // namespace svmkit::tamper
