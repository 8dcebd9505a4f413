// Calling big-endian, 32-bit firmware (Open Firmware, RTAS) from ppc64le
// guest code (guest/firmware_call_ppc64le.S has the details).
#pragma once

#include <stdint.h>

namespace svmkit::guest {

// Firmware takes 32-bit addresses: true when [p, p + size) lies below 4 GiB.
inline bool below_4g(const void* p, uint64_t size = 1) {
    const uint64_t a = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
    return a < (1ull << 32) && size <= (1ull << 32) - a;
}

} // namespace svmkit::guest

extern "C" long svmkit_call_be_firmware(uint64_t r3, uint64_t r4, uint64_t entry)
    __attribute__((visibility("hidden")));
