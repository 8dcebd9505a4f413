#include "platform/helper_program.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#ifndef SVMKIT_HELPER_DIR_FROM_BIN
#error "SVMKIT_HELPER_DIR_FROM_BIN (libexec/svmkit relative to bin/) comes from CMake"
#endif

namespace svmkit::platform {

namespace fs = std::filesystem;

const char* helper_dir_from_bin() {
    return SVMKIT_HELPER_DIR_FROM_BIN;
}

Result<std::string> helper_program(const char* env_var, const char* name) {
    std::error_code ec;
    if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') {
        if (!fs::exists(env, ec))
            return fail(ExitCode::io, "{}: no such file (set by {}, for the helper program {})",
                        env, env_var, name);
        return std::string(env);
    }
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec)
        return fail(ExitCode::io,
                    "cannot find the helper program {}: /proc/self/exe: {} (is /proc mounted? "
                    "or set {} to its path)",
                    name, ec.message(), env_var);
    const fs::path installed_dir =
        (self.parent_path() / SVMKIT_HELPER_DIR_FROM_BIN).lexically_normal();
    const bool installed = fs::is_directory(installed_dir, ec);
    const fs::path path = (installed ? installed_dir : self.parent_path()) / name;
    if (!fs::exists(path, ec)) {
        if (installed)
            return fail(ExitCode::io,
                        "the helper program {} is missing: {} does not exist; reinstall svmkit "
                        "(its package, or `cmake --install` of its build) or set {} to its path",
                        name, path.string(), env_var);
        return fail(ExitCode::io,
                    "the helper program {} is missing: neither {} (where an installed svmkit "
                    "keeps its helpers) nor {} (beside {}) exists; reinstall svmkit, rebuild it, "
                    "or set {} to its path",
                    name, (installed_dir / name).string(), path.string(),
                    self.filename().string(), env_var);
    }
    return path.string();
}

} // namespace svmkit::platform
