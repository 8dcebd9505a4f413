// Reading parameters from a kernel command line, for the stub (which honours
// `svmkit.swiotlb=`) and the sample kernel.
//
// Words are separated by spaces or tabs (double quotes are not treated
// specially: svmkit's own parameters never need them). When a parameter
// appears several times the last one counts, as in Linux.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace svmkit::guest {

// The value of the last `name=value` word in cmdline[0..len); false if none.
bool cmdline_param(const char* cmdline, size_t len, const char* name, const char** value,
                   size_t* value_len);

// "<decimal>[K|M|G]" (binary units, either case) -> bytes; false when empty,
// not a number, or overflowing 64 bits.
bool parse_size(const char* s, size_t len, uint64_t* out);

} // namespace svmkit::guest
