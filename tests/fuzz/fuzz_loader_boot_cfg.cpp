// Fuzz target: the boot.cfg parser (loader/boot_cfg). The input is the file.
// Every accepted menu must satisfy the invariants loader/boot_cfg.h states;
// every rejection must name a problem. A violation aborts.
#include "loader/boot_cfg.h"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

using namespace svmkit::loader;

void require(bool ok) {
    if (!ok)
        std::abort();
}

// NUL-terminated inside its array.
bool terminated(const char* s, size_t capacity) {
    return std::memchr(s, 0, capacity) != nullptr;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<char> text(data, data + size); // exact size: no NUL after it
    static auto menu = std::make_unique<BootMenu>();
    BootCfgError err{0, nullptr};
    const bool ok = parse_boot_cfg(text.empty() ? nullptr : text.data(), size, menu.get(), &err);
    if (!ok) {
        require(err.message != nullptr && std::strlen(err.message) > 0);
        return 0;
    }
    require(menu->count >= 1 && menu->count <= kMaxEntries);
    require(menu->default_index >= 0 && static_cast<uint32_t>(menu->default_index) < menu->count);
    for (uint32_t i = 0; i < menu->count; ++i) {
        const BootEntry& e = menu->entries[i];
        require(terminated(e.name, sizeof e.name) && e.name[0] != '\0');
        require(terminated(e.image_path, sizeof e.image_path) && e.image_path[0] == '/');
        require(terminated(e.cmdline, sizeof e.cmdline));
        require(find_boot_entry(*menu, e.name) == static_cast<int32_t>(i)); // names distinct
    }
    return 0;
}
