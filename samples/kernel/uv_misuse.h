// Ultracall misuse by the sample kernel, for the hostile-hypervisor suite
// (tests/e2e/hostile_hypervisor_test.sh, docs/hostile-hypervisor.md).
//
// With `svmkit.uv_misuse=1` on the signed command line the kernel makes
// ultracalls the ultravisor must refuse, and checks that each is refused with
// the code docs/platform.md promises and that nothing changed:
//
//   secure guest                                      expected
//   UV_ESM a second time (kbase, its own FDT)         U_PERMISSION (and it returns)
//   UV_UNSHARE_PAGE of a private page never shared    U_PARAMETER
//   UV_SHARE_PAGE of the first page past RAM          U_PARAMETER
//   UV_SHARE_PAGE of two pages across RAM's end       U_PARAMETER
//   UV_SHARE_PAGE with pfn + pages overflowing        U_PARAMETER
//   UV_SHARE_PAGE of zero pages                       U_PARAMETER
//   UV_SHARE_PAGE of the bounce pool (already shared) U_PARAMETER
//   UV_READ_MEM (a call this ultravisor does not serve) U_FUNCTION
//
//   normal (not secure) guest: UV_SHARE_PAGE of a private page, of a page past
//   RAM, UV_UNSHARE_PAGE and UV_UNSHARE_ALL_PAGES: all U_PERMISSION. (UV_ESM is
//   not tried there: from a normal guest it is a legitimate request.)
//
// After the calls the guest must still be what it was: secure (MSR[S]) or
// not. One console line per call, then a summary. The caller exits with
// kUvMisuseUnexpected when any answer differed.
#pragma once

#include "guest/console.h"
#include "guest/hcall.h"
#include "guest/memory.h"

#include <stdint.h>

namespace svmkit::sample {

// Exit status when an ultracall got an answer other than the expected one
// (documented in docs/platform.md beside the kernel's other statuses).
inline constexpr uint64_t kUvMisuseUnexpected = 25;

struct UvMisuseContext {
    const guest::Calls* calls = nullptr;
    guest::Console* con = nullptr;
    bool secure = false;
    uint64_t fdt = 0;         // the FDT the kernel was entered with (gpa)
    guest::Range ram;         // guest RAM, from the FDT's memory node
    guest::Range pool;        // the shared bounce pool (secure only; empty otherwise)
    uint64_t private_gpa = 0; // an address in the kernel's private memory
};

// True when `svmkit.uv_misuse=1` is on the command line.
bool uv_misuse_requested(const char* bootargs, int bootargs_len);

// Makes the calls above; true when every answer was the expected one and the
// guest's secure state did not change.
bool run_uv_misuse(const UvMisuseContext& ctx);

} // namespace svmkit::sample
