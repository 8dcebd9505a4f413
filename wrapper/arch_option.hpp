// --arch, one meaning everywhere: host, x86_64 or ppc64le; when the kernel
// is an ELF file its machine decides, and an explicit --arch that disagrees
// is a usage error (docs/cli.md).
#pragma once

#include "base/error.hpp"
#include "format/arch.hpp"

#include <string>

namespace svmkit::cli {

// The target for `kernel` (a path; empty when there is none) given the
// user's --arch (empty when not given). A raw, non-ELF kernel without
// --arch is for the host.
Result<format::Arch> resolve_arch(const std::string& option_value, const std::string& kernel);

} // namespace svmkit::cli
