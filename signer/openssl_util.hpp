// Small OpenSSL helpers shared by the signer's translation units.
#pragma once

#include <fmt/format.h>
#include <openssl/err.h>
#include <string>

namespace svmkit::signer::detail {

// Clears the OpenSSL error queue when a public entry point returns, so stale
// errors from probing or handled failures never show up in later messages.
struct ErrorQueueGuard {
    ErrorQueueGuard() = default;
    ErrorQueueGuard(const ErrorQueueGuard&) = delete;
    ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
    ~ErrorQueueGuard() { ERR_clear_error(); }
};

// The reason of the most recent OpenSSL error, or a fallback.
inline std::string openssl_reason() {
    unsigned long code = ERR_peek_last_error();
    if (code == 0)
        return "unknown OpenSSL error";
    const char* reason = ERR_reason_error_string(code);
    if (reason != nullptr)
        return reason;
    return fmt::format("OpenSSL error {:#x}", code);
}

// The value of one hex digit, or -1.
inline int hex_nibble(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

} // namespace svmkit::signer::detail
