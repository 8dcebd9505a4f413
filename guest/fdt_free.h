// Which memory a device tree leaves free: what the stub places things in
// (its stack, scratch memory, the device tree it builds, the initrd), on
// every kexec-style entry. A loader reserves nothing for the stub beyond
// the image (kexec-tools puts its purgatory wherever RAM is free), so the
// stub uses only RAM the tree describes, minus what the tree says is in use.
#pragma once

#include "guest/region_alloc.h"

#include <stdint.h>

namespace svmkit::guest {

enum class FdtReservations { ok, malformed, too_many };

// Reserves in `alloc` what the device tree `fdt` (a tree that passed
// fdt_check_full_strict, at guest-physical `fdt_gpa`) says is in use: the
// tree itself and every /memreserve/ entry.
FdtReservations reserve_fdt_ranges(const void* fdt, uint64_t fdt_gpa, RegionAllocator* alloc);

} // namespace svmkit::guest
