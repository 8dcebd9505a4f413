// The sample kernel's I/O workload: real block I/O through the virtio-blk
// driver of guest/, bounced through the restricted pool when the kernel runs
// secure, direct otherwise.
//
// Command-line parameters (all optional):
//   svmkit.io=MIB          how much to write and read back (default 4; 0: none)
//   svmkit.io_mode=MODE    verify (default): random offsets and sizes
//                          (4 KiB..256 KiB), written then read back and
//                          compared block by block;
//                          seqread: sequential 128 KiB reads;
//                          randread: random 4 KiB reads (benchmarks)
//   svmkit.io_seed=N       the random sequence (default 1)
//   svmkit.io_depth=N      requests in flight (1..8, default 8)
//
// What it proves, and the exit statuses it ends with (docs/platform.md):
//   0   every request succeeded and every block read back as written;
//   20  the device failed requests (a hostile back end; the driver's log line
//       says why) and nothing else went wrong: a clean, detected failure;
//   21  data read back differs from what was written: CORRUPTION (never
//       acceptable);
//   22  the device was refused at probe (e.g. no VIRTIO_F_ACCESS_PLATFORM);
//   23  the secret canary was found in the shared pool: a LEAK;
//   24  private memory changed under the workload: CORRUPTION.
#pragma once

#include "guest/console.h"
#include "guest/hcall.h"
#include "guest/memory.h"

#include <stdint.h>

namespace svmkit::sample {

enum IoStatus : uint64_t {
    kIoOk = 0,
    kIoFailed = 20,
    kIoCorrupt = 21,
    kIoRefused = 22,
    kIoLeak = 23,
    kIoPrivateCorrupt = 24,
};

struct IoContext {
    const guest::Calls* calls = nullptr;
    guest::Console* con = nullptr;
    const void* fdt = nullptr;
    const char* bootargs = nullptr;
    int bootargs_len = 0;
    bool secure = false;
    guest::Range pool;               // the restricted pool (secure only)
    const uint8_t* canary = nullptr; // 32 bytes of private secret
};

// Runs the workload on the first virtio-blk device of the FDT; kIoOk when
// there is no device or svmkit.io=0.
uint64_t run_io_workload(const IoContext& ctx);

} // namespace svmkit::sample
