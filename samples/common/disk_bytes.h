// loader::ReadSectors over the virtio-blk driver, for the guest programs that
// read an svmkit boot disk's GPT and archive (the boot loader, and the sample
// kernel looking for the disk's data partition).
#pragma once

#include "guest/virtio_blk.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::samples {

// Invariants: scratch is private memory of scratch_size bytes, a non-zero
// multiple of the 512-byte sector; blk is initialised.
struct DiskBytes {
    guest::VirtioBlk* blk;
    uint8_t* scratch;
    uint64_t scratch_size;
};

// Any byte range of the disk into buf, through whole sectors in the scratch
// buffer (ctx is a DiskBytes). False when a read fails. Hidden: its address
// is taken as a callback, which must be PC-relative in a guest program linked
// far above 4 GiB (no GOT).
__attribute__((visibility("hidden"))) bool read_disk_bytes(void* ctx, uint64_t offset, void* buf,
                                                           uint64_t size);

} // namespace svmkit::samples
