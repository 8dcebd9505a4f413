// Console output for freestanding guest code: H_PUT_TERM_CHAR in chunks of up
// to 16 bytes (r4 = vterm, r5 = length, bytes packed big-endian into r6, r7,
// as PAPR defines it), with just enough formatting for boot messages.
//
// The console goes through the hypervisor: never print a secret.
#pragma once

#include "guest/hcall.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

class Console {
  public:
    explicit Console(const Calls& calls) : calls_(calls) {}

    Console& write(const char* s, size_t n);
    Console& str(const char* s);
    Console& hex(uint64_t v); // 0x-prefixed, no leading zeros
    Console& dec(uint64_t v);
    Console& sdec(int64_t v);
    Console& bytes_hex(const uint8_t* p, size_t n); // lowercase hex, no prefix
    Console& nl() { return write("\n", 1); }

  private:
    const Calls& calls_;
};

} // namespace svmkit::guest
