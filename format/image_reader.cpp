#include "format/image_reader.hpp"

#include "base/checked.hpp"
#include "format/canonical_container.hpp"
#include "format/elf_reader.hpp"
#include "format/image_layout.hpp"
#include "format/manifest_fdt.hpp"

#include <algorithm>
#include <elf.h>
#include <set>

namespace svmkit::format {

const ImageSection* SecureImage::section(std::string_view name) const {
    for (const auto& s : sections)
        if (s.name == name)
            return &s;
    return nullptr;
}

const ImageSection* SecureImage::section(ComponentKind kind) const {
    return section(component_section(kind));
}

namespace {

bool is_known_loaded_section(std::string_view name) {
    if (name == kManifestSection)
        return true;
    for (ComponentKind k : kAllComponentKinds)
        if (component_section(k) == name)
            return true;
    return false;
}

// The ELF container's headers, checked by the one ELF reader (elf_reader.hpp)
// against what a secure image may be: an executable for one of the two
// platforms, with sections and a small section name table.
Result<ElfFile> read_image_elf(const InputFile& file) {
    const ElfRules rules{.types = {ET_EXEC},
                         .machines = {EM_X86_64, EM_PPC64},
                         .max_program_headers = kMaxImageSegments,
                         .min_section_headers = 1,
                         .max_section_headers = kMaxImageSections,
                         .section_names = true,
                         .max_name_table_size = 4096};
    auto elf = ElfFile::open(file, rules);
    if (!elf)
        return svmkit::unexpected(elf_error(file.path(), elf.error()));
    return std::move(*elf);
}

} // namespace

Result<SecureImage> open_image(const std::string& path) {
    SVM_TRY(opened, InputFile::open(path));
    auto file = std::make_shared<const InputFile>(std::move(opened));
    SecureImage img;
    img.file = file;

    SVM_TRY(elf, read_image_elf(*file));
    const Elf64_Ehdr& eh = elf.header();
    img.arch = eh.e_machine == EM_X86_64 ? Arch::x86_64 : Arch::ppc64le;
    const std::span<const Elf64_Phdr> phdrs = elf.program_headers();
    const std::span<const Elf64_Shdr> shdrs = elf.section_headers();

    // ---- segments -------------------------------------------------------------
    const std::uint64_t va_base = arch_link_va_base(img.arch);
    std::vector<std::size_t> segment_index; // program header index of each img.segments entry
    for (std::size_t i = 0; i < phdrs.size(); ++i) {
        const Elf64_Phdr& p = phdrs[i];
        if (p.p_type == PT_NULL || p.p_type == PT_NOTE || p.p_type == PT_GNU_STACK)
            continue;
        if (p.p_type != PT_LOAD)
            return fail(ExitCode::malformed, "{}: unexpected program header type {:#x} (entry {})",
                        path, p.p_type, i);
        if (p.p_flags & PF_W)
            return fail(ExitCode::malformed,
                        "{}: segment {} is writable; image segments are read-only", path, i);
        if (p.p_filesz != p.p_memsz)
            return fail(ExitCode::malformed, "{}: segment {} has file size {} but memory size {}",
                        path, i, p.p_filesz, p.p_memsz);
        if (auto in_file = elf.segment_bytes(i); !in_file)
            return svmkit::unexpected(elf_error(path, in_file.error()));
        if (!checked_add(p.p_paddr, p.p_memsz) || !checked_add(p.p_vaddr, p.p_memsz) ||
            p.p_vaddr - p.p_paddr != va_base)
            return fail(ExitCode::malformed, "{}: segment {} has inconsistent addresses", path, i);
        for (std::size_t j = 0; j < img.segments.size(); ++j) {
            const ImageSegment& o = img.segments[j];
            if (ranges_overlap(o.paddr, o.memsz, p.p_paddr, p.p_memsz))
                return fail(ExitCode::malformed,
                            "{}: segment {} [{:#x}, {:#x}) overlaps segment {} [{:#x}, {:#x})",
                            path, i, p.p_paddr, p.p_paddr + p.p_memsz, segment_index[j], o.paddr,
                            o.paddr + o.memsz);
        }
        img.segments.push_back(
            ImageSegment{p.p_offset, p.p_filesz, p.p_memsz, p.p_paddr, p.p_vaddr, p.p_flags});
        segment_index.push_back(i);
    }
    if (img.segments.empty())
        return fail(ExitCode::malformed, "{}: no loadable segment", path);

    // ---- sections -------------------------------------------------------------
    std::set<std::string> seen;
    for (std::size_t i = 0; i < shdrs.size(); ++i) {
        const Elf64_Shdr& s = shdrs[i];
        if (i == 0) {
            if (s.sh_type != SHT_NULL)
                return fail(ExitCode::malformed, "{}: section 0 is not the null section", path);
            continue;
        }
        std::string name(elf.section_name(i));
        if (!seen.insert(name).second)
            return fail(ExitCode::malformed, "{}: duplicate section '{}'", path, name);
        if (i == eh.e_shstrndx)
            continue;
        if (!is_known_loaded_section(name))
            return fail(ExitCode::malformed, "{}: unknown section '{}'", path, name);
        if (s.sh_type != SHT_PROGBITS || !(s.sh_flags & SHF_ALLOC))
            return fail(ExitCode::malformed, "{}: section '{}' is not loadable data", path, name);
        if (s.sh_flags & SHF_WRITE)
            return fail(ExitCode::malformed, "{}: section '{}' is writable", path, name);
        if (auto in_file = elf.section_bytes(i); !in_file)
            return svmkit::unexpected(elf_error(path, in_file.error()));
        // Exactly one segment must carry this section at the same place.
        const ImageSegment* carrier = nullptr;
        for (const ImageSegment& seg : img.segments) {
            if (s.sh_addr >= seg.vaddr && s.sh_addr - seg.vaddr <= seg.memsz &&
                s.sh_size <= seg.memsz - (s.sh_addr - seg.vaddr) && s.sh_size > 0) {
                if (carrier != nullptr)
                    return fail(ExitCode::malformed, "{}: section '{}' lies in two segments", path,
                                name);
                carrier = &seg;
            }
        }
        if (carrier == nullptr)
            return fail(ExitCode::malformed, "{}: section '{}' is not inside a loadable segment",
                        path, name);
        if (s.sh_offset != carrier->offset + (s.sh_addr - carrier->vaddr))
            return fail(ExitCode::malformed,
                        "{}: section '{}' file offset disagrees with its segment", path, name);
        // Only .text is executable and it needs an executable segment; data
        // may share one (format version 2: one R+X segment for the whole
        // image; the canonical form below fixes which version has which).
        const bool exec = (s.sh_flags & SHF_EXECINSTR) != 0;
        if ((exec && (carrier->flags & PF_X) == 0) || (exec && name != ".text"))
            return fail(ExitCode::malformed, "{}: section '{}' has the wrong executable flag", path,
                        name);
        ImageSection sec{name, s.sh_offset, s.sh_size,
                         carrier->paddr + (s.sh_addr - carrier->vaddr), exec};
        if (name == kManifestSection)
            img.manifest_section = sec;
        else
            img.sections.push_back(sec);
    }
    for (const char* required : {".text", kManifestSection, ".kernel:vmlinux.strip"})
        if (!seen.contains(required))
            return fail(ExitCode::malformed, "{}: missing section '{}'", path, required);
    std::sort(img.sections.begin(), img.sections.end(),
              [](const ImageSection& a, const ImageSection& b) { return a.address < b.address; });

    // Every loaded segment must carry a known section (no anonymous bytes).
    for (const ImageSegment& seg : img.segments) {
        bool carried = seg.paddr == img.manifest_section.address;
        for (const ImageSection& s : img.sections)
            carried = carried || s.address == seg.paddr;
        if (!carried)
            return fail(ExitCode::malformed, "{}: segment at {:#x} carries no known section", path,
                        seg.paddr);
    }

    // ---- the manifest -----------------------------------------------------------
    const ImageSection& ms = img.manifest_section;
    if (ms.size > kMaxManifestSize)
        return fail(ExitCode::malformed, "{}: manifest section is {} bytes, more than the {} limit",
                    path, ms.size, kMaxManifestSize);
    std::vector<std::byte> blob(ms.size);
    SVM_CHECK(file->read_at(ms.offset, blob));
    SVM_TRY(manifest, decode_manifest_fdt(blob, path));
    blob.resize(manifest_fdt_size(blob));
    img.manifest_blob = std::move(blob);
    img.manifest = std::move(manifest);
    img.entry_vaddr = eh.e_entry;

    // ---- container and manifest agree ---------------------------------------------
    const Manifest& m = img.manifest;
    if (m.arch != img.arch)
        return fail(ExitCode::malformed, "{}: manifest says {}, the ELF header says {}", path,
                    arch_name(m.arch), arch_name(img.arch));
    if (eh.e_entry != va_base + m.entry)
        return fail(ExitCode::malformed, "{}: ELF entry point disagrees with the manifest", path);
    for (const ImageSection& s : img.sections) {
        const Component* c = nullptr;
        for (ComponentKind k : kAllComponentKinds)
            if (component_section(k) == s.name)
                c = m.find(k);
        if (c == nullptr)
            return fail(ExitCode::malformed, "{}: section '{}' has no manifest entry", path,
                        s.name);
        if (c->address != s.address || c->size != s.size)
            return fail(ExitCode::malformed,
                        "{}: section '{}' is at {:#x} size {}, the manifest says {:#x} size {}",
                        path, s.name, s.address, s.size, c->address, c->size);
    }
    for (const Component& c : m.components)
        if (img.section(c.kind) == nullptr)
            return fail(ExitCode::malformed, "{}: missing section '{}' for manifest component {}",
                        path, component_section(c.kind), component_name(c.kind));
    if (ms.address < m.image_base)
        return fail(ExitCode::malformed, "{}: manifest section lies below the image base", path);

    // ---- where the manifest section lies, and the container's one byte form -------
    // The stub looks for the manifest at __stub_end, the first 64 KiB boundary
    // after its sections; the payloads start where the manifest's capacity ends.
    std::uint64_t stub_end = m.image_base;
    std::uint64_t next_after_manifest = UINT64_MAX;
    for (const Component& c : m.components) {
        if (c.kind == ComponentKind::stub_text || c.kind == ComponentKind::stub_rodata)
            stub_end =
                std::max(stub_end, checked_align_up(c.address + c.size, kPageSize).value_or(0));
        else if (c.address > ms.address)
            next_after_manifest = std::min(next_after_manifest, c.address);
    }
    if (ms.address != stub_end || ms.address + ms.size != next_after_manifest)
        return fail(ExitCode::malformed,
                    "{}: manifest section [{:#x}, {:#x}) is not between the stub's end {:#x} and "
                    "the first payload at {:#x}",
                    path, ms.address, ms.address + ms.size, stub_end, next_after_manifest);
    std::vector<ContainerSection> layout;
    for (const ImageSection& s : img.sections)
        layout.push_back({s.name, s.address, s.size, s.executable});
    layout.push_back({ms.name, ms.address, ms.size, ms.executable});
    std::sort(layout.begin(), layout.end(),
              [](const auto& a, const auto& b) { return a.address < b.address; });
    SVM_CHECK(check_canonical_container(*file, img.arch, m.format_version, m.image_base, m.entry,
                                        layout));
    return img;
}

} // namespace svmkit::format
