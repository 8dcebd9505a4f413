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
    if (size < sizeof(fdt_header))
        return -FDT_ERR_TRUNCATED;
    if (fdt_magic(fdt) != FDT_MAGIC)
        return -FDT_ERR_BADMAGIC;
    // Version 16 is the oldest whose node names are not full paths, the form
    // every current tool writes; 17 adds size_dt_struct.
    if (fdt_version(fdt) < 16 || fdt_version(fdt) > 17 || fdt_last_comp_version(fdt) > 16)
        return -FDT_ERR_BADVERSION;
    if (int err = fdtwalk::fdt_walk_strict(fdt, size); err != 0)
        return err;
    return fdt_check_full(fdt, size);
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
