// Runs an image file through the two paths that must refuse a tampered image:
//   verify: format::open_image + format::verify_image against a policy,
//           exactly what `svmkit verify` does;
//   boot:   format::open_image, then platform::Machine create/load/run with
//           the same policy, exactly what `svmkit boot` does.
// The boot runs in a child process: a tampered stub executes before the
// ultravisor has checked anything (by design, as on PEF), and its wild code
// must not be able to corrupt the harness that judges it.
#pragma once

#include "format/image_reader.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::tamper {

struct Policy {
    std::vector<std::string> trusted_key_files;
    std::uint64_t min_security_version = 0;
};

struct VerifyResult {
    bool opened = false;   // the strict reader accepted the file
    bool accepted = false; // opened and every digest and the policy held
    int exit_code = 0;     // what `svmkit verify` would exit with
    std::string message;   // the reader's error, or the report's failures joined
};

VerifyResult verify_file(const std::string& path, const Policy& policy);

struct BootResult {
    // How far it got: the reader refused the file (what `svmkit boot` reports
    // first), the machine could not load or run it, or the guest ran.
    enum class Stage { reader_refused, load_failed, platform_error, ran, harness_crashed };
    Stage stage = Stage::harness_crashed;
    bool esm_attempted = false;
    bool secure = false;     // UV_ESM succeeded: the ultravisor accepted the image
    std::string esm_failure; // platform::esm_failure_name, when ESM was refused
    std::string outcome;     // platform::boot_outcome_name, when the guest ran
    std::optional<std::uint64_t> exit_status;
    std::string message; // why it stopped
    [[nodiscard]] bool accepted() const { return secure; }
    // "reader", "UV: kernel-digest-mismatch", "faulted before ESM", ...
    [[nodiscard]] std::string verdict() const;
};

struct BootOptions {
    std::uint64_t memory_size = 128ull << 20;
    unsigned timeout_ms = 5000;
    // When set, the file's bytes are placed where this (pristine) image's
    // sections are, without parsing the file: the ultravisor alone must then
    // refuse what the reader would have refused.
    const format::SecureImage* layout = nullptr;
};

BootResult boot_file(const std::string& path, const Policy& policy, const BootOptions& options);

} // namespace svmkit::tamper
