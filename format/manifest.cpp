#include "format/manifest.hpp"

#include "base/checked.hpp"

#include <algorithm>

namespace svmkit::format {

namespace {
struct ComponentNames {
    ComponentKind kind;
    std::string_view node;
    std::string_view section;
};
constexpr std::array kComponentNames = {
    ComponentNames{ComponentKind::stub_text, "stub-text", ".text"},
    ComponentNames{ComponentKind::stub_rodata, "stub-rodata", ".rodata"},
    ComponentNames{ComponentKind::kernel, "kernel", ".kernel:vmlinux.strip"},
    ComponentNames{ComponentKind::initrd, "initrd", ".kernel:initrd"},
    ComponentNames{ComponentKind::cmdline, "cmdline", ".kernel:cmdline"},
    ComponentNames{ComponentKind::dtb, "dtb", ".kernel:dtb"},
};
} // namespace

std::string_view component_name(ComponentKind kind) {
    return kComponentNames[static_cast<std::size_t>(kind)].node;
}

std::string_view component_section(ComponentKind kind) {
    return kComponentNames[static_cast<std::size_t>(kind)].section;
}

std::optional<ComponentKind> parse_component_name(std::string_view name) {
    for (const auto& n : kComponentNames)
        if (n.node == name)
            return n.kind;
    return std::nullopt;
}

std::string_view compression_name(Compression c) {
    return c == Compression::gzip ? "gzip" : "none";
}

std::optional<Compression> parse_compression_name(std::string_view name) {
    if (name == "none")
        return Compression::none;
    if (name == "gzip")
        return Compression::gzip;
    return std::nullopt;
}

const Component* Manifest::find(ComponentKind kind) const {
    for (const auto& c : components)
        if (c.kind == kind)
            return &c;
    return nullptr;
}

Component* Manifest::find(ComponentKind kind) {
    for (auto& c : components)
        if (c.kind == kind)
            return &c;
    return nullptr;
}

std::string hex(std::span<const std::byte> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (std::byte b : bytes) {
        auto v = static_cast<unsigned>(b);
        out.push_back(kDigits[v >> 4]);
        out.push_back(kDigits[v & 15]);
    }
    return out;
}

Result<void> validate_manifest(const Manifest& m, const std::string& where) {
    if (!is_known_format_version(m.format_version))
        return fail(ExitCode::malformed,
                    "{}: manifest format version {} is not supported (expected {} or {})", where,
                    m.format_version, kFormatVersionSegmentPerSection, kFormatVersionOneSegment);
    if (m.swiotlb_size < kMinSwiotlbSize || m.swiotlb_size % kPageSize != 0)
        return fail(ExitCode::malformed,
                    "{}: bounce-pool size {} must be a multiple of 64 KiB and at least 1 MiB",
                    where, m.swiotlb_size);
    if (m.image_base % kPageSize != 0)
        return fail(ExitCode::malformed, "{}: image base {:#x} is not 64 KiB aligned", where,
                    m.image_base);

    const std::size_t digest_len = signer::digest_size(m.hash);
    std::uint64_t image_end = m.image_base;
    for (std::size_t i = 0; i < m.components.size(); ++i) {
        const Component& c = m.components[i];
        const auto name = component_name(c.kind);
        if (i > 0 && m.components[i - 1].kind >= c.kind)
            return fail(ExitCode::malformed,
                        "{}: manifest lists component {} twice or out of order", where, name);
        auto end = checked_add(c.address, c.size);
        if (!end)
            return fail(ExitCode::malformed, "{}: component {} range overflows", where, name);
        if (c.size == 0)
            return fail(ExitCode::malformed, "{}: component {} is empty", where, name);
        if (c.address < m.image_base)
            return fail(ExitCode::malformed,
                        "{}: component {} at {:#x} lies below the image base {:#x}", where, name,
                        c.address, m.image_base);
        if (c.digest.size() != digest_len)
            return fail(ExitCode::malformed, "{}: component {} digest is {} bytes, {} needs {}",
                        where, name, c.digest.size(), signer::digest_name(m.hash), digest_len);
        for (std::size_t j = 0; j < i; ++j) {
            const Component& o = m.components[j];
            if (ranges_overlap(c.address, c.size, o.address, o.size))
                return fail(ExitCode::malformed, "{}: components {} and {} overlap", where, name,
                            component_name(o.kind));
        }
        image_end = std::max(image_end, *end);
        const bool is_kernel = c.kind == ComponentKind::kernel;
        if (c.compression != Compression::none && !is_kernel)
            return fail(ExitCode::malformed,
                        "{}: component {} is compressed; only the kernel may be", where, name);
        if (c.compression != Compression::none) {
            if (!c.unpacked_size || !c.unpacked_digest)
                return fail(ExitCode::malformed,
                            "{}: compressed kernel lacks its unpacked size or digest", where);
            if (c.unpacked_digest->size() != digest_len)
                return fail(ExitCode::malformed, "{}: kernel unpacked digest has the wrong length",
                            where);
        } else if (c.unpacked_size || c.unpacked_digest) {
            return fail(ExitCode::malformed,
                        "{}: component {} is not compressed but records unpacked bytes", where,
                        name);
        }
        if (is_kernel != c.kernel.has_value())
            return fail(ExitCode::malformed,
                        "{}: component {} {} placement (load address, memory size)", where, name,
                        is_kernel ? "lacks its" : "must not have a");
    }

    const Component* text = m.find(ComponentKind::stub_text);
    const Component* kernel = m.find(ComponentKind::kernel);
    if (text == nullptr)
        return fail(ExitCode::malformed, "{}: manifest has no stub-text component", where);
    if (kernel == nullptr)
        return fail(ExitCode::malformed, "{}: manifest has no kernel component", where);
    if (text->address != m.image_base)
        return fail(ExitCode::malformed, "{}: the stub does not start at the image base", where);
    if (m.entry < text->address || m.entry >= text->address + text->size)
        return fail(ExitCode::malformed, "{}: entry point {:#x} is outside the stub's code", where,
                    m.entry);

    const KernelPlacement& kp = *kernel->kernel;
    const std::uint64_t image_size =
        kernel->compression == Compression::none ? kernel->size : *kernel->unpacked_size;
    auto kernel_end = checked_add(kp.load_address, kp.memory_size);
    if (!kernel_end)
        return fail(ExitCode::malformed, "{}: kernel load range overflows", where);
    if (kp.memory_size < image_size)
        return fail(ExitCode::malformed, "{}: kernel memory size {} is smaller than its image ({})",
                    where, kp.memory_size, image_size);
    if (kp.entry_offset >= kp.memory_size)
        return fail(ExitCode::malformed, "{}: kernel entry offset {:#x} is outside the kernel",
                    where, kp.entry_offset);
    if (ranges_overlap(kp.load_address, kp.memory_size, m.image_base, image_end - m.image_base))
        return fail(ExitCode::malformed,
                    "{}: kernel load range [{:#x}, {:#x}) overlaps the image [{:#x}, {:#x})", where,
                    kp.load_address, *kernel_end, m.image_base, image_end);
    for (const Signature& s : m.signatures)
        if (s.value.empty())
            return fail(ExitCode::malformed, "{}: a signature has an empty value", where);
    return {};
}

} // namespace svmkit::format
