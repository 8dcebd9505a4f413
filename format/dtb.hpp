// Validation of user-supplied flattened device trees.
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace svmkit::format {

// libfdt needs 8-byte aligned input; this owns an aligned copy.
class AlignedFdt {
  public:
    explicit AlignedFdt(std::span<const std::byte> bytes);
    [[nodiscard]] const void* data() const { return words_.data(); }
    [[nodiscard]] std::size_t size() const { return size_; }

  private:
    std::vector<std::uint64_t> words_;
    std::size_t size_;
};

// fdt_check_full, but first refusing device-tree versions before 16 (libfdt
// 1.6.1's fdt_check_full dereferences NULL on some) and walking the structure
// block with bounded steps (a huge property length makes it loop forever);
// both found by tests/fuzz, reproducers in tests/fuzz/regressions/. Returns 0
// or a negative libfdt error.
int fdt_check_full_strict(const void* fdt, std::size_t size);

// The whole blob must be one valid device tree (fdt_check_full) whose
// totalsize is the blob size. Errors: ExitCode::malformed naming `where`.
Result<void> check_device_tree(std::span<const std::byte> bytes, const std::string& where);

} // namespace svmkit::format
