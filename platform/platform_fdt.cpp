#include "platform/platform_fdt.hpp"

#include <libfdt.h>
#include <string>
#include <string_view>

namespace svmkit::platform {

namespace {

std::vector<std::byte> be_cells(std::initializer_list<std::uint64_t> values) {
    std::vector<std::byte> out;
    for (std::uint64_t v : values)
        for (unsigned shift = 64; shift > 0; shift -= 8)
            out.push_back(static_cast<std::byte>((v >> (shift - 8)) & 0xff));
    return out;
}

} // namespace

Result<std::vector<std::byte>> build_platform_fdt(const PlatformFdtSpec& spec) {
    std::vector<std::byte> buf(kPlatformFdtMaxSize);
    void* f = buf.data();
    const int size = static_cast<int>(buf.size());
    int err = fdt_create(f, size);
    for (const Reservation& r : spec.reserved)
        err = err != 0 ? err : fdt_add_reservemap_entry(f, r.base, r.size);
    auto prop = [&](const char* name, const void* value, std::size_t len) {
        if (err == 0)
            err = fdt_property(f, name, value, static_cast<int>(len));
    };
    auto prop_u32 = [&](const char* name, std::uint32_t v) {
        if (err == 0)
            err = fdt_property_u32(f, name, v);
    };
    auto prop_str = [&](const char* name, std::string_view s) {
        const std::string z(s); // with its NUL
        prop(name, z.c_str(), z.size() + 1);
    };
    auto begin = [&](const std::string& name) {
        if (err == 0)
            err = fdt_begin_node(f, name.c_str());
    };
    auto end = [&] {
        if (err == 0)
            err = fdt_end_node(f);
    };
    if (err == 0)
        err = fdt_finish_reservemap(f);
    begin("");
    prop_u32("#address-cells", 2);
    prop_u32("#size-cells", 2);
    prop_str("compatible", "svmkit,simulated-pef");
    prop_str("model", "svmkit simulated PEF machine");
    begin("memory@0");
    prop_str("device_type", "memory");
    const auto reg = be_cells({0, spec.memory_size});
    prop("reg", reg.data(), reg.size());
    end();
    begin("chosen");
    if (!spec.bootargs.empty())
        prop_str("bootargs", spec.bootargs);
    if (spec.initrd) {
        const auto start = be_cells({spec.initrd->base});
        const auto stop = be_cells({spec.initrd->base + spec.initrd->size});
        prop("linux,initrd-start", start.data(), start.size());
        prop("linux,initrd-end", stop.data(), stop.size());
    }
    end();
    for (unsigned i = 0; i < spec.virtio_mmio_nodes; ++i) {
        const std::uint64_t at = kVirtioMmioBase + i * kVirtioMmioStride;
        begin(fmt::format("virtio_mmio@{:x}", at));
        prop_str("compatible", "virtio,mmio");
        const auto dev_reg = be_cells({at, kVirtioMmioSize});
        prop("reg", dev_reg.data(), dev_reg.size());
        end();
    }
    end();
    if (err == 0)
        err = fdt_finish(f);
    if (err != 0)
        return fail(ExitCode::io, "building the platform device tree: {}", fdt_strerror(err));
    buf.resize(fdt_totalsize(f));
    return buf;
}

} // namespace svmkit::platform
