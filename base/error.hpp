// Errors and results shared by every host-side component.
//
// Every failure that can reach a user carries the exit code the CLI documents
// (README "Exit codes") and a message that names the file and the problem.
// Functions that can fail on untrusted or user-supplied input return
// Result<T> (base/result.hpp) instead of throwing, so the failure path is visible at each call.
#pragma once

#include "base/result.hpp"

#include <fmt/format.h>
#include <string>
#include <utility>

namespace svmkit {

// The documented process exit codes, one table for every command
// (README "Exit codes", `svmkit help`, docs/cli.md). Values are part of the
// CLI contract: never renumbered, only added to.
enum class ExitCode : int {
    ok = 0,
    verification_failed = 1, // a signature, digest or policy check failed
    usage = 2,               // bad options, unknown algorithm, missing passphrase;
                             // an output that would replace an input or a private key
    malformed = 3,           // an input file is not what it must be
    io = 4,                  // a file could not be read or written
    // svmkit boot's own outcomes; the guest's exit status is never one of
    // them (it is in the report and its JSON).
    refused = 5,            // the ultravisor, stub or loader refused the image
    guest_failed = 6,       // the guest faulted, returned from its entry or terminated
    guest_violation = 7,    // the guest broke the sandbox's rules
    qemu_failed = 8,        // QEMU failed or could not start (reserved)
    timeout = 9,            // the guest ran past --timeout
    guest_exit_status = 10, // the guest exited with a non-zero status
};

struct ExitCodeInfo {
    ExitCode code;
    const char* name;
    const char* meaning;
};
// Every exit code, in order.
inline constexpr ExitCodeInfo kExitCodes[] = {
    {ExitCode::ok, "ok", "success"},
    {ExitCode::verification_failed, "verification-failed",
     "a signature, digest or policy check failed"},
    {ExitCode::usage, "usage",
     "bad options or arguments; an output naming an input or an existing private key"},
    {ExitCode::malformed, "malformed", "an input is not what it must be (format, type or size)"},
    {ExitCode::io, "io", "a file could not be read or written (missing, full device, closed pipe)"},
    {ExitCode::refused, "refused",
     "boot: the ultravisor or stub refused the image, or the guest terminated the VM"},
    {ExitCode::guest_failed, "guest-failed", "boot: the guest faulted or returned from its entry"},
    {ExitCode::guest_violation, "guest-violation", "boot: the guest broke its sandbox's rules"},
    {ExitCode::qemu_failed, "qemu-failed", "boot: QEMU failed or could not be started"},
    {ExitCode::timeout, "timeout", "boot: the guest ran longer than --timeout"},
    {ExitCode::guest_exit_status, "guest-exit-status",
     "boot: the guest exited with a non-zero status (in the report and its JSON)"},
};

struct Error {
    ExitCode code;
    std::string message;
};

template <typename T>
using Result = BasicResult<T, Error>;

// Builds an unexpected Error with a formatted message.
template <typename... Args>
[[nodiscard]] Unexpected<Error> fail(ExitCode code, fmt::format_string<Args...> format,
                                     Args&&... args) {
    return Unexpected<Error>(Error{code, fmt::format(format, std::forward<Args>(args)...)});
}

// Prefixes the message of an error with context ("while reading X: ...").
inline Error with_context(Error e, const std::string& context) {
    e.message = context + ": " + e.message;
    return e;
}

} // namespace svmkit

// Unwraps a Result into `var` or returns its error from the enclosing function.
// Used sparingly: it keeps error propagation on one line without exceptions.
#define SVM_TRY(var, expr)                                                                         \
    auto var##_result_ = (expr);                                                                   \
    if (!var##_result_)                                                                            \
        return ::svmkit::unexpected(std::move(var##_result_.error()));                             \
    auto var = std::move(*var##_result_)

#define SVM_CONCAT_INNER_(a, b) a##b
#define SVM_CONCAT_(a, b) SVM_CONCAT_INNER_(a, b)
#define SVM_CHECK(expr) SVM_CHECK_IMPL_(SVM_CONCAT_(svm_check_, __LINE__), expr)
#define SVM_CHECK_IMPL_(name, expr)                                                                \
    do {                                                                                           \
        auto name = (expr);                                                                        \
        if (!name)                                                                                 \
            return ::svmkit::unexpected(std::move(name.error()));                                  \
    } while (0)
