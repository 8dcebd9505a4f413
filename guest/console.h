// Console output for freestanding guest code, with just enough formatting for
// boot messages. The bytes go where the platform's Calls send them
// (Calls::console_write): H_PUT_TERM_CHAR (guest/hvterm.h), or Open
// Firmware's `write` while a ppc64le stub runs under firmware.
//
// The console goes through the hypervisor: never print a secret.
#pragma once

#include "guest/hcall.h"

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

// Digits of v, right-aligned at the end of `buf`; returns the index of the
// first digit (the digits are buf[i..20)). At most 16 hex or 20 decimal
// digits, so a hex number leaves room for a "0x" before it.
size_t format_hex(uint64_t v, char (&buf)[20]);
size_t format_dec(uint64_t v, char (&buf)[20]);

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
