// Judging and counting the cases of the tamper matrix: one row per kind of
// mutation, and every case that breaks the rule recorded with its details.
//
// The rule: a case that changed a covered byte is rejected by verify, by boot
// (when run) and by the ultravisor alone (when run), and each rejection names
// what was wrong; a case that is byte-identical to a signed image gets that
// image's verdict; a case that changed only uncovered bytes may go either way.
#pragma once

#include "tamper/cases.hpp"
#include "tamper/probe.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::tamper {

struct Outcome {
    VerifyResult verify;
    std::optional<BootResult> boot;      // svmkit boot's path
    bool machine_booted = false;         // boot needed a machine (the reader accepted)
    std::optional<BootResult> uv_direct; // the ultravisor alone, reader bypassed
};

struct RowStats {
    std::string row;
    std::size_t cases = 0;
    std::size_t covered = 0;
    std::size_t verify_rejected = 0;
    std::size_t boot_run = 0, boot_rejected = 0, machine_boots = 0;
    std::size_t uv_run = 0, uv_rejected = 0;
    std::size_t accepted_covered = 0;   // the number that must be 0
    std::size_t misdiagnosed = 0;       // rejected, but the report names something else
    std::size_t uncovered_accepted = 0; // uncovered bytes changed and the image still passes
    std::size_t same_as_signed = 0;     // byte-identical to a signed image
    std::map<std::string, std::size_t> verify_reasons, boot_reasons, uv_reasons;
};

class Matrix {
  public:
    void add(const Case& c, const Outcome& o);
    [[nodiscard]] bool ok() const { return violations_.empty(); }
    [[nodiscard]] std::size_t total_cases() const;
    [[nodiscard]] const std::vector<std::string>& violations() const { return violations_; }
    [[nodiscard]] const std::vector<RowStats>& rows() const { return rows_; }
    // One line per case that was byte-identical to a signed image, with its verdicts.
    [[nodiscard]] const std::vector<std::string>& identical() const { return identical_; }

    // The summary table, plain text.
    [[nodiscard]] std::string table() const;
    // The same table and the rejection causes per row, as Markdown.
    [[nodiscard]] std::string markdown() const;

  private:
    RowStats& row(const std::string& name);
    std::vector<RowStats> rows_;
    std::vector<std::string> violations_;
    std::vector<std::string> identical_;
};

// A short, stable name for a rejection message (numbers and paths removed),
// for the tally of causes.
std::string reason_of(const std::string& message);

} // namespace svmkit::tamper
