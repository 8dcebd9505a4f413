#include "format/image_writer.hpp"
#include "base/output_file.hpp"

#include "base/checked.hpp"
#include "format/canonical_container.hpp"
#include "format/copy_pipeline.hpp"
#include "format/elf_handle.hpp"
#include "format/image_layout.hpp"
#include "format/manifest_fdt.hpp"
#include "format/tbs.hpp"

#include <algorithm>
#include <cstring>
#include <elf.h>
#include <sys/stat.h>
#include <thread>

namespace svmkit::format {

bool libelf_init() {
    static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
    return ok;
}

namespace {

struct PlacedComponent {
    ComponentInput input;
    std::uint64_t address = 0;
};

// Components big enough to deserve their own hashing thread.
constexpr std::uint64_t kParallelThreshold = 4u << 20;

struct SectionSpec {
    std::string name;
    std::uint64_t address = 0; // guest-physical
    std::uint64_t size = 0;
    bool executable = false;
    const std::vector<std::byte>* data = nullptr; // written by libelf; else streamed by us
};

Result<void> write_elf_container(int fd, Arch arch, std::uint32_t format_version,
                                 std::uint64_t image_base, std::uint64_t entry,
                                 const std::vector<SectionSpec>& sections,
                                 const std::string& path) {
    if (!libelf_init())
        return fail(ExitCode::io, "libelf initialisation failed: {}", libelf_error());
    ElfPtr elf(elf_begin(fd, ELF_C_WRITE, nullptr));
    if (!elf)
        return fail(ExitCode::io, "{}: libelf cannot write: {}", path, libelf_error());
    Elf64_Ehdr* eh = elf64_newehdr(elf.get());
    if (eh == nullptr)
        return fail(ExitCode::io, "{}: libelf: {}", path, libelf_error());
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_OSABI] = ELFOSABI_NONE;
    eh->e_type = ET_EXEC;
    eh->e_machine = arch_elf_machine(arch);
    eh->e_version = EV_CURRENT;
    eh->e_flags = arch_elf_flags(arch);
    const std::uint64_t va_base = arch_link_va_base(arch);
    eh->e_entry = va_base + entry;

    // Loaded sections first (one PT_LOAD each), then the name table.
    std::string shstrtab(1, '\0');
    std::vector<std::size_t> name_offsets;
    for (const SectionSpec& s : sections) {
        name_offsets.push_back(shstrtab.size());
        shstrtab += s.name;
        shstrtab.push_back('\0');
    }
    const std::size_t shstrtab_name = shstrtab.size();
    shstrtab += ".shstrtab";
    shstrtab.push_back('\0');

    const bool one_segment = format_version == kFormatVersionOneSegment;
    Elf64_Phdr* ph = elf64_newphdr(elf.get(), one_segment ? 1 : sections.size());
    if (ph == nullptr)
        return fail(ExitCode::io, "{}: libelf: {}", path, libelf_error());
    std::uint64_t end_of_loaded = kFirstLoadOffset;
    for (std::size_t i = 0; i < sections.size(); ++i) {
        const SectionSpec& s = sections[i];
        const std::uint64_t offset = image_file_offset(image_base, s.address);
        if (!one_segment)
            ph[i] = image_load_segment(arch, image_base, s.address, s.size, s.executable);

        Elf_Scn* scn = elf_newscn(elf.get());
        Elf64_Shdr* sh = scn != nullptr ? elf64_getshdr(scn) : nullptr;
        if (sh == nullptr)
            return fail(ExitCode::io, "{}: libelf: {}", path, libelf_error());
        sh->sh_name = static_cast<Elf64_Word>(name_offsets[i]);
        sh->sh_type = SHT_PROGBITS;
        sh->sh_flags = SHF_ALLOC | (s.executable ? SHF_EXECINSTR : 0);
        sh->sh_addr = va_base + s.address;
        sh->sh_offset = offset;
        sh->sh_size = s.size;
        sh->sh_addralign = kPageSize;
        if (s.data != nullptr) {
            Elf_Data* d = elf_newdata(scn);
            if (d == nullptr)
                return fail(ExitCode::io, "{}: libelf: {}", path, libelf_error());
            d->d_buf = const_cast<std::byte*>(s.data->data());
            d->d_size = s.data->size();
            d->d_type = ELF_T_BYTE;
            d->d_align = 1;
            d->d_off = 0;
            d->d_version = EV_CURRENT;
        }
        // Sections without data were streamed into place already; libelf
        // leaves their file range untouched (ELF_F_LAYOUT, no data blocks).
        end_of_loaded = std::max(end_of_loaded, offset + s.size);
    }

    if (one_segment)
        ph[0] = image_load_segment(arch, image_base, image_base, end_of_loaded - kFirstLoadOffset,
                                   true);

    Elf_Scn* strscn = elf_newscn(elf.get());
    Elf64_Shdr* strsh = strscn != nullptr ? elf64_getshdr(strscn) : nullptr;
    Elf_Data* strdata = strscn != nullptr ? elf_newdata(strscn) : nullptr;
    if (strsh == nullptr || strdata == nullptr)
        return fail(ExitCode::io, "{}: libelf: {}", path, libelf_error());
    strsh->sh_name = static_cast<Elf64_Word>(shstrtab_name);
    strsh->sh_type = SHT_STRTAB;
    strsh->sh_offset = end_of_loaded;
    strsh->sh_size = shstrtab.size();
    strsh->sh_addralign = 1;
    strdata->d_buf = shstrtab.data();
    strdata->d_size = shstrtab.size();
    strdata->d_type = ELF_T_BYTE;
    strdata->d_align = 1;
    strdata->d_version = EV_CURRENT;
    eh->e_shstrndx = static_cast<Elf64_Half>(elf_ndxscn(strscn));

    eh->e_phoff = sizeof(Elf64_Ehdr);
    eh->e_shoff = *checked_align_up(end_of_loaded + shstrtab.size(), 8);
    elf_flagelf(elf.get(), ELF_C_SET, ELF_F_LAYOUT);
    if (elf_update(elf.get(), ELF_C_WRITE) < 0)
        return fail(ExitCode::io, "{}: libelf could not write the image: {}", path, libelf_error());
    return {};
}

} // namespace

Result<void> sign_manifest(Manifest& manifest, const std::vector<const signer::PrivateKey*>& keys) {
    const std::vector<std::byte> tbs = encode_tbs(manifest);
    for (const signer::PrivateKey* key : keys) {
        const auto algo = key->public_key().default_algorithm();
        SVM_TRY(value, key->sign(algo, tbs));
        manifest.signatures.push_back(
            Signature{algo, key->public_key().key_id(), std::move(value)});
    }
    return {};
}

Result<ImageBuildResult> build_image(const ImageBuildRequest& req) {
    const std::string& path = req.output_path;
    if (req.swiotlb_size < kMinSwiotlbSize || req.swiotlb_size % kPageSize != 0)
        return fail(ExitCode::usage,
                    "--swiotlb-size {} must be a multiple of 64 KiB and at least 1 MiB",
                    req.swiotlb_size);

    // ---- layout -------------------------------------------------------------
    std::vector<PlacedComponent> placed;
    auto stub_part = [](ComponentKind kind, const char* label,
                        const std::vector<std::byte>& bytes) {
        ComponentInput in;
        in.kind = kind;
        in.stored = PayloadSource::from_memory(label, bytes);
        return in;
    };
    placed.push_back(
        {stub_part(ComponentKind::stub_text, "stub code", req.stub.text), req.stub.base});
    if (!req.stub.rodata.empty())
        placed.push_back({stub_part(ComponentKind::stub_rodata, "stub data", req.stub.rodata),
                          req.stub.rodata_address});

    Manifest m;
    m.arch = req.arch;
    m.format_version = format_version_for(req.arch);
    m.image_base = req.stub.base;
    m.entry = req.stub.base;
    m.security_version = req.security_version;
    m.creation_time = req.creation_time;
    m.swiotlb_size = req.swiotlb_size;
    m.hash = req.hash;
    m.esm = req.esm;

    // The manifest's capacity: its unsigned encoding (digest sizes are fixed,
    // so zero digests have the final size) plus room for signatures.
    const std::uint64_t manifest_address = req.stub.end;
    std::vector<ComponentInput> payloads = req.payloads;
    std::sort(payloads.begin(), payloads.end(),
              [](const ComponentInput& a, const ComponentInput& b) { return a.kind < b.kind; });
    std::uint64_t cursor = 0; // set after the capacity is known
    {
        Manifest sizing = m;
        const std::vector<std::byte> zero_digest(signer::digest_size(req.hash));
        for (const auto& p : placed)
            sizing.components.push_back(Component{p.input.kind,
                                                  p.address,
                                                  p.input.stored.size,
                                                  Compression::none,
                                                  zero_digest,
                                                  {},
                                                  {},
                                                  {}});
        for (const auto& p : payloads) {
            Component c{p.kind,
                        0,
                        p.stored.size,
                        p.compression,
                        zero_digest,
                        p.unpacked_size,
                        p.unpacked_digest,
                        p.kernel};
            if (p.unpacked_digest)
                c.unpacked_digest = zero_digest;
            sizing.components.push_back(c);
        }
        for (const auto* key : req.keys) {
            (void)key;
            sizing.signatures.push_back(Signature{{}, {}, std::vector<std::byte>(512)});
        }
        const auto size = encode_manifest_fdt(sizing).size();
        cursor = *checked_align_up(manifest_address + size + kSignatureReserve, kPageSize);
    }
    const std::uint64_t manifest_capacity = cursor - manifest_address;

    for (auto& p : payloads) {
        if (p.stored.size == 0)
            return fail(ExitCode::malformed, "{}: {} is empty", p.stored.label,
                        component_name(p.kind));
        placed.push_back({std::move(p), cursor});
        auto next = checked_add(cursor, placed.back().input.stored.size);
        if (!next || !checked_align_up(*next, kPageSize))
            return fail(ExitCode::malformed, "{}: image would exceed the address space",
                        placed.back().input.stored.label);
        cursor = *checked_align_up(*next, kPageSize);
    }

    // ---- stream payloads into place, hashing them ---------------------------
    SVM_TRY(out, OutputFile::create(path));
    std::vector<Result<std::vector<std::byte>>> digests(placed.size(), std::vector<std::byte>{});
    {
        std::vector<std::jthread> workers;
        for (std::size_t i = 0; i < placed.size(); ++i) {
            auto job = [&, i] {
                digests[i] =
                    copy_and_hash_pipelined(placed[i].input.stored, req.hash, out,
                                            image_file_offset(m.image_base, placed[i].address));
            };
            if (placed[i].input.stored.size >= kParallelThreshold)
                workers.emplace_back(job);
            else
                job();
        }
    }
    for (std::size_t i = 0; i < placed.size(); ++i) {
        if (!digests[i])
            return svmkit::unexpected(digests[i].error());
        const ComponentInput& in = placed[i].input;
        m.components.push_back(Component{in.kind, placed[i].address, in.stored.size, in.compression,
                                         std::move(*digests[i]), in.unpacked_size,
                                         in.unpacked_digest, in.kernel});
    }
    SVM_CHECK(validate_manifest(m, path));

    // ---- sign and encode the manifest -------------------------------------
    SVM_CHECK(sign_manifest(m, req.keys));
    std::vector<std::byte> blob = encode_manifest_fdt(m);
    if (blob.size() > manifest_capacity)
        return fail(ExitCode::usage, "{}: the signed manifest ({} bytes) exceeds its section ({})",
                    path, blob.size(), manifest_capacity);
    blob.resize(manifest_capacity, std::byte{0});

    // ---- the ELF container --------------------------------------------------
    std::vector<SectionSpec> sections;
    for (const auto& p : placed) {
        if (p.input.kind == ComponentKind::kernel)
            sections.push_back(
                SectionSpec{kManifestSection, manifest_address, manifest_capacity, false, &blob});
        sections.push_back(SectionSpec{std::string(component_section(p.input.kind)), p.address,
                                       p.input.stored.size,
                                       p.input.kind == ComponentKind::stub_text, nullptr});
    }
    SVM_CHECK(write_elf_container(out.fd(), req.arch, m.format_version, m.image_base, m.entry,
                                  sections, path));
    struct stat st {};
    ::fstat(out.fd(), &st);
    SVM_CHECK(out.commit());
    return ImageBuildResult{std::move(m), static_cast<std::uint64_t>(st.st_size)};
}

} // namespace svmkit::format
