#include "format/canonical_container.hpp"

#include "base/checked.hpp"
#include "format/image_layout.hpp"
#include "format/manifest.hpp"

#include <algorithm>
#include <cstring>
#include <elf.h>

namespace svmkit::format {

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

const Field kEhdrFields[] = {
    {"e_ident", 0, EI_NIDENT},           SVMKIT_FIELD(Elf64_Ehdr, e_type),
    SVMKIT_FIELD(Elf64_Ehdr, e_machine), SVMKIT_FIELD(Elf64_Ehdr, e_version),
    SVMKIT_FIELD(Elf64_Ehdr, e_entry),   SVMKIT_FIELD(Elf64_Ehdr, e_phoff),
    SVMKIT_FIELD(Elf64_Ehdr, e_shoff),   SVMKIT_FIELD(Elf64_Ehdr, e_flags),
    SVMKIT_FIELD(Elf64_Ehdr, e_ehsize),  SVMKIT_FIELD(Elf64_Ehdr, e_phentsize),
    SVMKIT_FIELD(Elf64_Ehdr, e_phnum),   SVMKIT_FIELD(Elf64_Ehdr, e_shentsize),
    SVMKIT_FIELD(Elf64_Ehdr, e_shnum),   SVMKIT_FIELD(Elf64_Ehdr, e_shstrndx),
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
void append(std::vector<std::byte>& out, const T& v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof v);
}

const char* field_at(std::span<const Field> fields, std::size_t offset) {
    for (const Field& f : fields)
        if (offset >= f.offset && offset < f.offset + f.size)
            return f.name;
    return "?";
}

// Names the piece byte at `at` (relative to the piece) for an error message.
std::string describe(std::size_t piece, std::uint64_t at,
                     std::span<const ContainerSection> sections) {
    if (piece == 0) {
        if (at < sizeof(Elf64_Ehdr))
            return fmt::format("ELF header field {}", field_at(kEhdrFields, at));
        const std::uint64_t i = (at - sizeof(Elf64_Ehdr)) / sizeof(Elf64_Phdr);
        return fmt::format("program header {} field {}", i,
                           field_at(kPhdrFields, (at - sizeof(Elf64_Ehdr)) % sizeof(Elf64_Phdr)));
    }
    if (piece == 1)
        return "the section name table";
    const std::uint64_t i = at / sizeof(Elf64_Shdr);
    const std::string name = i == 0                 ? "null"
                             : i <= sections.size() ? sections[i - 1].name
                                                    : ".shstrtab";
    return fmt::format("section header {} ({}) field {}", i, name,
                       field_at(kShdrFields, at % sizeof(Elf64_Shdr)));
}

} // namespace

Elf64_Phdr image_load_segment(Arch arch, std::uint64_t image_base, std::uint64_t address,
                              std::uint64_t size, bool executable) {
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_flags = PF_R | (executable ? PF_X : 0);
    ph.p_offset = image_file_offset(image_base, address);
    ph.p_vaddr = arch_link_va_base(arch) + address;
    ph.p_paddr = address;
    ph.p_filesz = size;
    ph.p_memsz = size;
    ph.p_align = kPageSize;
    return ph;
}

CanonicalContainer canonical_container(Arch arch, std::uint32_t format_version,
                                       std::uint64_t image_base, std::uint64_t entry,
                                       std::span<const ContainerSection> sections) {
    const std::uint64_t va_base = arch_link_va_base(arch);
    std::string names(1, '\0');
    std::vector<std::uint32_t> name_at;
    std::uint64_t end_of_loaded = kFirstLoadOffset;
    for (const ContainerSection& s : sections) {
        name_at.push_back(static_cast<std::uint32_t>(names.size()));
        names += s.name;
        names.push_back('\0');
        end_of_loaded = std::max(end_of_loaded, image_file_offset(image_base, s.address) + s.size);
    }
    const auto strtab_name = static_cast<std::uint32_t>(names.size());
    names += ".shstrtab";
    names.push_back('\0');
    const std::size_t n = sections.size();
    const std::uint64_t shoff = (end_of_loaded + names.size() + 7) / 8 * 8;

    CanonicalContainer c;
    c.file_size = shoff + (n + 2) * sizeof(Elf64_Shdr);
    CanonicalContainer::Piece headers{0, {}};
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh.e_type = ET_EXEC;
    eh.e_machine = arch_elf_machine(arch);
    eh.e_version = EV_CURRENT;
    eh.e_entry = va_base + entry;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_shoff = shoff;
    eh.e_flags = arch_elf_flags(arch);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    const bool one_segment = format_version == kFormatVersionOneSegment;
    eh.e_phnum = static_cast<Elf64_Half>(one_segment ? 1 : n);
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = static_cast<Elf64_Half>(n + 2);
    eh.e_shstrndx = static_cast<Elf64_Half>(n + 1);
    append(headers.bytes, eh);
    if (one_segment)
        append(headers.bytes, image_load_segment(arch, image_base, image_base,
                                                 end_of_loaded - kFirstLoadOffset, true));

    CanonicalContainer::Piece section_headers{shoff, {}};
    append(section_headers.bytes, Elf64_Shdr{});
    for (std::size_t i = 0; i < n; ++i) {
        const ContainerSection& s = sections[i];
        const std::uint64_t offset = image_file_offset(image_base, s.address);
        if (!one_segment)
            append(headers.bytes,
                   image_load_segment(arch, image_base, s.address, s.size, s.executable));

        Elf64_Shdr sh{};
        sh.sh_name = name_at[i];
        sh.sh_type = SHT_PROGBITS;
        sh.sh_flags = SHF_ALLOC | (s.executable ? SHF_EXECINSTR : 0);
        sh.sh_addr = va_base + s.address;
        sh.sh_offset = offset;
        sh.sh_size = s.size;
        sh.sh_addralign = kPageSize;
        append(section_headers.bytes, sh);
    }
    Elf64_Shdr strsh{};
    strsh.sh_name = strtab_name;
    strsh.sh_type = SHT_STRTAB;
    strsh.sh_offset = end_of_loaded;
    strsh.sh_size = names.size();
    strsh.sh_addralign = 1;
    append(section_headers.bytes, strsh);

    const auto* nb = reinterpret_cast<const std::byte*>(names.data());
    c.pieces.push_back(std::move(headers));
    c.pieces.push_back({end_of_loaded, {nb, nb + names.size()}});
    c.pieces.push_back(std::move(section_headers));
    return c;
}

Result<void> check_canonical_container(const InputFile& file, Arch arch,
                                       std::uint32_t format_version, std::uint64_t image_base,
                                       std::uint64_t entry,
                                       std::span<const ContainerSection> sections) {
    const std::string& path = file.path();
    const CanonicalContainer c =
        canonical_container(arch, format_version, image_base, entry, sections);
    if (file.size() != c.file_size)
        return fail(ExitCode::malformed,
                    "{}: the file is {} bytes, but its sections make a {} byte image ({})", path,
                    file.size(), c.file_size,
                    file.size() > c.file_size ? "bytes after the section headers"
                                              : "the section headers are not last");
    // Everything outside the sections' contents, in file order: the pieces
    // and the zero gaps around them.
    struct Span {
        std::uint64_t offset, size;
        const std::vector<std::byte>* expected; // nullptr: zeros
        std::size_t piece;
    };
    std::vector<std::pair<std::uint64_t, std::uint64_t>> taken; // [offset, end) of contents
    for (const ContainerSection& s : sections) {
        const std::uint64_t at = image_file_offset(image_base, s.address);
        taken.emplace_back(at, at + s.size);
    }
    for (std::size_t i = 0; i < c.pieces.size(); ++i)
        taken.emplace_back(c.pieces[i].offset, c.pieces[i].offset + c.pieces[i].bytes.size());
    std::sort(taken.begin(), taken.end());
    std::vector<Span> spans;
    for (std::size_t i = 0; i < c.pieces.size(); ++i)
        spans.push_back({c.pieces[i].offset, c.pieces[i].bytes.size(), &c.pieces[i].bytes, i});
    std::uint64_t cursor = 0;
    for (const auto& [from, to] : taken) {
        if (from > cursor)
            spans.push_back({cursor, from - cursor, nullptr, 0});
        cursor = std::max(cursor, to);
    }
    std::sort(spans.begin(), spans.end(),
              [](const Span& a, const Span& b) { return a.offset < b.offset; });

    // Read in bounded chunks: a hostile file may claim sections far apart.
    constexpr std::uint64_t kChunk = std::uint64_t{64} * 1024;
    std::vector<std::byte> got;
    for (const Span& s : spans) {
        for (std::uint64_t done = 0; done < s.size; done += got.size()) {
            got.resize(std::min(kChunk, s.size - done));
            SVM_CHECK(file.read_at(s.offset + done, got));
            for (std::uint64_t k = 0; k < got.size(); ++k) {
                const std::uint64_t i = done + k;
                const std::byte want = s.expected != nullptr ? (*s.expected)[i] : std::byte{0};
                if (got[k] == want)
                    continue;
                if (s.expected == nullptr)
                    return fail(ExitCode::malformed,
                                "{}: non-zero padding at offset {:#x}, outside every section", path,
                                s.offset + i);
                return fail(ExitCode::malformed,
                            "{}: {} is not what svmkit writes at offset {:#x} (the ELF "
                            "container has one form)",
                            path, describe(s.piece, i, sections), s.offset + i);
            }
        }
    }
    return {};
}

} // namespace svmkit::format
