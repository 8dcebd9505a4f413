// Where svmkit finds its helper programs: svmkit-hypervisor, svmkit-vhost-blk
// and the boot loader's ELF.
//
// Installed (cmake --install, the .deb), svmkit is in bin/ and its helpers in
// libexec/svmkit/; the path from one to the other is compiled in
// (SVMKIT_HELPER_DIR_FROM_BIN, relative), so an install under any prefix
// works. In the build tree, svmkit and its helpers share build/wrapper/; a
// helper that runs another (the hypervisor starts svmkit-vhost-blk) finds it
// beside itself in both layouts.
#pragma once

#include "base/error.hpp"

#include <string>

namespace svmkit::platform {

// The path of helper `name`, which must exist:
//   - $env_var when it is set and not empty (an override, for tests);
//   - else, when the installed layout's directory (this executable's
//     directory joined with SVMKIT_HELPER_DIR_FROM_BIN) exists, there;
//   - else beside this executable.
// Nothing else is tried; an error names the path looked at, the variable
// that overrides it and what to reinstall.
Result<std::string> helper_program(const char* env_var, const char* name);

// The directory the installed layout keeps helpers in, relative to bin/.
const char* helper_dir_from_bin();

} // namespace svmkit::platform
