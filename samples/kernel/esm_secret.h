// Reading a secret file of the image's ibm,esm blob, as a PEF guest's
// svm-password-agent does (docs/esm.md).
//
// With `svmkit.secret_file=NAME` on the signed command line the kernel reads
// NAME with UV_ESMB_GET_FILE, 64 bytes a call, and prints its size and SHA-256:
//
//   svmkit sample kernel: secret file NAME: N bytes in C calls, sha256 HEX
//
// `svmkit.secret_file_reads=R` reads it R times (at most 100000) and checks
// every read gives the same bytes, showing the ultravisor keeps serving
// (the public one fails after about 125 calls).
#pragma once

#include "guest/console.h"
#include "guest/hcall.h"

#include <stdint.h>

namespace svmkit::sample {

// Exit status when the file cannot be read or two reads differ.
inline constexpr uint64_t kEsmSecretFailed = 26;

// Nothing to do (true) when the command line does not ask; false on a failure
// (already reported on the console).
bool read_esm_secret_file(const guest::Calls& calls, guest::Console& con, const char* bootargs,
                          int bootargs_len);

} // namespace svmkit::sample
