// svmkit inspect: everything inside an image, for people and for scripts.
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/hex_text.hpp"
#include "wrapper/json.hpp"

#include "format/esm_blob.hpp"
#include "format/image_layout.hpp"
#include "format/image_reader.hpp"
#include "format/verify.hpp"
#include "platform/esm_initrd.hpp"
#include "platform/machine.hpp"
#include "platform/platform_fdt.hpp"
#include "wrapper/json.hpp"
#include "wrapper/memory_map.hpp"

#include <cstdio>
#include <ctime>

namespace svmkit::cli {

namespace {

std::string iso_time(std::uint64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Where the image's ibm,esm blob is: its own nodes beside the manifest, or
// (without them) a blob in a cpio prepended to its initrd, svm-tools' way
// (docs/esm.md, "The blob in the initrd"), or none.
struct EsmView {
    const format::EsmBlob* own = nullptr; // the image's nodes (null: it has none)
    std::optional<platform::InitrdEsmBlob> in_initrd;
    std::string problem; // a malformed blob in the initrd
    // The blob, wherever it is; null: none.
    [[nodiscard]] const format::EsmBlob* blob() const { return in_initrd ? &in_initrd->blob : own; }
    // "image" or "initrd:<cpio member>" (blob() != nullptr).
    [[nodiscard]] std::string source() const {
        return in_initrd ? "initrd:" + in_initrd->path : "image";
    }
};

EsmView esm_view(const format::SecureImage& img) {
    EsmView v;
    if (!img.manifest.esm.empty()) {
        v.own = &img.manifest.esm;
        return v;
    }
    auto found = platform::find_image_initrd_esm_blob(img);
    if (!found)
        v.problem = found.error().message;
    else
        v.in_initrd = std::move(*found);
    return v;
}

// Where the image's pieces land when the simulated machine's firmware boots
// it (docs/platform.md): the components where they are stored, the kernel
// where it is unpacked, the firmware's FDT and stack (ppc64le: the exception
// vectors), in the default RAM. What the stub places top-down at boot (the
// initrd's copy, the bounce pool, the kernel's stack, its FDT copy) is not
// knowable from the image alone and is listed after the map.
std::vector<MapRow> image_map(const format::SecureImage& img) {
    std::vector<MapEntry> entries;
    for (const format::Component& c : img.manifest.components)
        entries.push_back({fmt::format("{} (stored)", format::component_name(c.kind)), "image",
                           c.address, c.address + c.size});
    entries.push_back({"the manifest (stored)", "image", img.manifest_section.address,
                       img.manifest_section.address + img.manifest_section.size});
    for (const format::Component& c : img.manifest.components)
        if (c.kernel)
            entries.push_back({"kernel (unpacked)", "kernel", c.kernel->load_address,
                               c.kernel->load_address + c.kernel->memory_size});
    if (img.manifest.arch == format::Arch::ppc64le)
        entries.push_back({"the exception vectors", "firmware", 0, 0x10000});
    entries.push_back({"the device tree", "firmware", platform::kFirmwareFdtAddress,
                       platform::kFirmwareFdtAddress + platform::kPlatformFdtMaxSize});
    entries.push_back(
        {"the firmware stack", "firmware", platform::kGuestStackBase, platform::kGuestStackTop});
    return memory_map(std::move(entries), 0, platform::kDefaultMemorySize);
}

void inspect_json(const format::SecureImage& img) {
    const format::Manifest& m = img.manifest;
    JsonWriter j;
    j.begin_object();
    j.value("schema", "svmkit-inspect-v1");
    j.value("file", img.path());
    j.value("file_size", img.file->size());
    j.value("arch", format::arch_name(m.arch));
    j.begin_object("manifest");
    j.value("format_version", std::uint64_t{m.format_version});
    j.value("image_base", hex_address(m.image_base));
    j.value("entry", hex_address(m.entry));
    j.value("security_version", m.security_version);
    j.value("creation_time", m.creation_time);
    j.value("creation_time_utc", iso_time(m.creation_time));
    j.value("swiotlb_size", m.swiotlb_size);
    j.value("hash", signer::digest_name(m.hash));
    j.value("section_address", hex_address(img.manifest_section.address));
    j.value("section_size", img.manifest_section.size);
    j.value("blob_size", std::uint64_t{img.manifest_blob.size()});
    j.value("section_file_offset", img.manifest_section.offset);
    j.end_object();
    j.begin_array("components");
    for (const format::Component& c : m.components) {
        const format::ImageSection* s = img.section(c.kind);
        j.begin_object();
        j.value("name", format::component_name(c.kind));
        j.value("section", s->name);
        j.value("address", hex_address(c.address));
        j.value("file_offset", s->offset);
        j.value("size", c.size);
        j.value("compression", format::compression_name(c.compression));
        j.value("digest", format::hex(c.digest));
        if (c.unpacked_size)
            j.value("unpacked_size", *c.unpacked_size);
        if (c.unpacked_digest)
            j.value("unpacked_digest", format::hex(*c.unpacked_digest));
        if (c.kernel) {
            j.value("load_address", hex_address(c.kernel->load_address));
            j.value("memory_size", c.kernel->memory_size);
            j.value("entry_offset", hex_address(c.kernel->entry_offset));
        }
        j.end_object();
    }
    j.end_array();
    j.begin_array("signatures");
    for (const format::Signature& s : m.signatures) {
        j.begin_object();
        j.value("algorithm", signer::algorithm_name(s.algorithm));
        j.value("key_id", signer::key_id_hex(s.key_id));
        j.value("value", format::hex(s.value));
        j.end_object();
    }
    j.end_array();
    // The ibm,esm nodes beside the manifest (docs/esm.md; `svmkit esm
    // display` shows them in full). The sealed digests and files are covered
    // by the signatures, the lockboxes are not.
    const EsmView esm = esm_view(img);
    const format::EsmBlob none;
    const format::EsmBlob& blob = esm.blob() != nullptr ? *esm.blob() : none;
    j.begin_object("esm");
    if (esm.blob() != nullptr)
        j.value("source", esm.source());
    else
        j.null("source");
    if (!esm.problem.empty())
        j.value("problem", esm.problem);
    j.begin_array("lockboxes");
    for (const format::EsmLockbox& l : blob.lockboxes) {
        j.begin_object();
        j.value("number", std::uint64_t{l.number});
        j.value("fingerprint", format::esm_fingerprint_hex(l.fingerprint));
        j.end_object();
    }
    j.end_array();
    j.value("digests", blob.digests.has_value());
    j.begin_array("files");
    for (const format::EsmFile& f : blob.files)
        j.element(f.name);
    j.end_array();
    j.end_object();
    j.json("memory_map", memory_map_json(image_map(img)));
    j.end_object();
    print_json(j.document(), stdout);
}

std::string human_size(std::uint64_t v) {
    if (v >= (1ull << 20))
        return fmt::format("{} ({:.1f} MiB)", v, static_cast<double>(v) / (1 << 20));
    if (v >= (1ull << 10))
        return fmt::format("{} ({:.1f} KiB)", v, static_cast<double>(v) / (1 << 10));
    return std::to_string(v);
}

void inspect_text(const format::SecureImage& img) {
    const format::Manifest& m = img.manifest;
    std::string out;
    out += fmt::format("image       {}\n", img.path());
    out += fmt::format("arch        {}\n", format::arch_name(m.arch));
    out += fmt::format("file size   {}\n", human_size(img.file->size()));
    out += fmt::format("image base  {:#x}    entry {:#x}\n", m.image_base, m.entry);
    out += fmt::format("manifest    format {}, {} at {:#x} (section {} bytes, blob {} bytes), "
                       "file offset {:#x}\n",
                       m.format_version, format::kManifestSection, img.manifest_section.address,
                       img.manifest_section.size, img.manifest_blob.size(),
                       img.manifest_section.offset);
    out += fmt::format("created     {} ({})\n", iso_time(m.creation_time), m.creation_time);
    out += fmt::format("security    version {}\n", m.security_version);
    out += fmt::format("bounce pool {}\n", human_size(m.swiotlb_size));
    out += fmt::format("hash        {}\n", signer::digest_name(m.hash));
    out += "components\n";
    for (const format::Component& c : m.components) {
        const format::ImageSection* s = img.section(c.kind);
        out += fmt::format("  {:<12} {:<22} at {:#010x} file offset {:#x} size {}{}\n",
                           format::component_name(c.kind), s->name, c.address, s->offset,
                           human_size(c.size),
                           c.compression == format::Compression::none
                               ? std::string()
                               : fmt::format(", {}", format::compression_name(c.compression)));
        out +=
            fmt::format("  {:<12} {} {}\n", "", signer::digest_name(m.hash), format::hex(c.digest));
        if (c.unpacked_size)
            out += fmt::format("  {:<12} unpacked {} {} {}\n", "", human_size(*c.unpacked_size),
                               signer::digest_name(m.hash), format::hex(*c.unpacked_digest));
        if (c.kernel)
            out += fmt::format("  {:<12} load at {:#x}, memory {}, entry +{:#x}\n", "",
                               c.kernel->load_address, human_size(c.kernel->memory_size),
                               c.kernel->entry_offset);
        if (c.kind == format::ComponentKind::cmdline) {
            // The command line is small and the one component people read.
            auto src = format::component_source(img, c.kind);
            std::string text;
            (void)format::stream_payload(
                src, [&](std::span<const std::byte> chunk) -> Result<void> {
                    text.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
                    return {};
                });
            out += fmt::format("  {:<12} \"{}\"\n", "", text);
        }
    }
    out += fmt::format("signatures  {}\n", m.signatures.empty() ? "none (unsigned image)" : "");
    for (std::size_t i = 0; i < m.signatures.size(); ++i)
        out += fmt::format("  [{}] {:<18} key {}\n", i,
                           signer::algorithm_name(m.signatures[i].algorithm),
                           signer::key_id_hex(m.signatures[i].key_id));
    const EsmView esm = esm_view(img);
    if (!esm.problem.empty()) {
        out += fmt::format("ibm,esm     unusable: {}\n", esm.problem);
    } else if (esm.blob() == nullptr) {
        out += "ibm,esm     none\n";
    } else {
        const format::EsmBlob& b = *esm.blob();
        out += fmt::format(
            "ibm,esm     {}{} lockbox(es), digests {}, {} secret file(s) ({}; svmkit esm "
            "display)\n",
            esm.in_initrd ? fmt::format("in the initrd's cpio member {}: ", esm.in_initrd->path)
                          : "",
            b.lockboxes.size(), b.digests ? "sealed" : "absent", b.files.size(),
            esm.in_initrd ? "signed as part of the initrd"
                          : "digests and files signed, lockboxes not");
        for (const format::EsmLockbox& l : b.lockboxes)
            out += fmt::format("  lockbox {} fingerprint {}\n", l.number,
                               format::esm_fingerprint_hex(l.fingerprint));
        for (const format::EsmFile& f : b.files)
            out += fmt::format("  file    {}\n", f.name);
    }
    out += fmt::format("memory map (firmware-style boot, {} MiB of RAM)\n",
                       platform::kDefaultMemorySize >> 20);
    out += memory_map_text(image_map(img));
    out += fmt::format("  placed by the stub at boot, top-down in free RAM: the initrd's copy, "
                       "the bounce pool ({}), the kernel's stack (256 KiB), its FDT copy\n",
                       human_size(m.swiotlb_size));
    std::fputs(out.c_str(), stdout);
}

} // namespace

Result<int> run_inspect(const InspectOptions& o) {
    SVM_TRY(img, format::open_image(o.image));
    if (o.json)
        inspect_json(img);
    else
        inspect_text(img);
    return 0;
}

Command add_inspect_command(CLI::App& app) {
    auto o = std::make_shared<InspectOptions>();
    auto* in = app.add_subcommand("inspect", "Show everything inside an image");
    in->add_option("image", o->image, "Secure image ('-': stdin)")->required();
    add_json_flag(in, o->json, "The image (svmkit-inspect-v1)");
    return {in, [o] { return run_inspect(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
