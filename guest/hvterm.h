// Writing to a hypervisor virtual terminal with H_PUT_TERM_CHAR (PAPR): at
// most 16 bytes per call, r4 = the terminal's unit address, r5 = the length,
// the bytes packed big-endian into r6 and r7. Both targets' Calls use it for
// their console (guest/hcall.h, guest/hcall_ppc64le.h).
//
// The console goes through the hypervisor: never print a secret.
#pragma once

#include "guest/uv_abi.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

template <typename HypercallsT>
void hvterm_write(const HypercallsT& calls, uint64_t vterm, const char* s, size_t n) {
    while (n > 0) {
        const size_t chunk = n < 16 ? n : 16;
        uint64_t packed[2] = {0, 0};
        for (size_t i = 0; i < chunk; ++i)
            packed[i / 8] |= static_cast<uint64_t>(static_cast<unsigned char>(s[i]))
                             << (56 - 8 * (i % 8));
        calls.hcall(H_PUT_TERM_CHAR, vterm, chunk, packed[0], packed[1]);
        s += chunk;
        n -= chunk;
    }
}

} // namespace svmkit::guest
