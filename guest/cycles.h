// A cheap cycle counter for guest code that times its own stages
// (benchmarks, guest/virtio_blk.h's BlkStats): the time-stamp counter on
// x86-64 (constant rate on the CPUs the simulated platform runs on), the
// timebase on POWER. Ticks only: a caller converts them with a rate it
// measures against H_SVMKIT_TIMEBASE (nanoseconds) over the same interval.
// No hypercall, no barrier: a read costs tens of cycles, so it may bracket
// stages of a microsecond without hiding them.
#pragma once

#include <stdint.h>

namespace svmkit::guest {

inline uint64_t read_cycles() {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__powerpc64__)
    return __builtin_ppc_get_timebase();
#else
#error "guest/cycles.h: no cycle counter for this architecture"
#endif
}

} // namespace svmkit::guest
