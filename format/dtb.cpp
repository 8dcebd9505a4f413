#include "format/dtb.hpp"

#include "guest/fdt_walk.h"
#include <cstring>

#include <libfdt.h>

namespace svmkit::format {

AlignedFdt::AlignedFdt(std::span<const std::byte> bytes)
    : words_(bytes.size() / 8 + 1), size_(bytes.size()) {
    if (!bytes.empty())
        std::memcpy(words_.data(), bytes.data(), bytes.size());
}

int fdt_check_full_strict(const void* fdt, std::size_t size) {
    return fdtwalk::fdt_check_full_strict(fdt, size);
}

Result<void> check_device_tree(std::span<const std::byte> bytes, const std::string& where) {
    if (bytes.size() < sizeof(fdt_header))
        return fail(ExitCode::malformed, "{}: not a device tree blob: only {} bytes", where,
                    bytes.size());
    AlignedFdt fdt(bytes);
    if (fdt_magic(fdt.data()) != FDT_MAGIC)
        return fail(ExitCode::malformed, "{}: not a device tree blob (bad magic)", where);
    if (fdt_totalsize(fdt.data()) != bytes.size())
        return fail(ExitCode::malformed, "{}: device tree header says {} bytes, the file has {}",
                    where, fdt_totalsize(fdt.data()), bytes.size());
    if (int err = fdt_check_full_strict(fdt.data(), bytes.size()); err != 0)
        return fail(ExitCode::malformed, "{}: invalid device tree: {}", where, fdt_strerror(err));
    return {};
}

} // namespace svmkit::format
