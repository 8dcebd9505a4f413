#include "samples/common/disk_bytes.h"

#include <string.h>

namespace svmkit::samples {

bool read_disk_bytes(void* ctx, uint64_t offset, void* buf, uint64_t size) {
    constexpr uint64_t kSector = 512;
    const DiskBytes& d = *static_cast<const DiskBytes*>(ctx);
    auto* out = static_cast<uint8_t*>(buf);
    while (size > 0) {
        const uint64_t skip = offset % kSector;
        uint64_t chunk = d.scratch_size - skip;
        if (chunk > size)
            chunk = size;
        // skip + chunk <= scratch_size, a multiple of the sector: no overflow.
        const uint64_t bytes = (skip + chunk + kSector - 1) / kSector * kSector;
        if (d.blk->read(offset / kSector, d.scratch, bytes) != guest::VirtioErr::none)
            return false;
        memcpy(out, d.scratch + skip, chunk);
        out += chunk;
        offset += chunk;
        size -= chunk;
    }
    return true;
}

} // namespace svmkit::samples
