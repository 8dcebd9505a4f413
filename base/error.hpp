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

// The documented process exit codes. Values are part of the CLI contract.
enum class ExitCode : int {
    ok = 0,
    verification_failed = 1, // a signature, digest or policy check failed
    usage = 2,               // bad options, unknown algorithm, missing passphrase
    malformed = 3,           // an input file is not what it must be
    io = 4,                  // a file could not be read or written
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
