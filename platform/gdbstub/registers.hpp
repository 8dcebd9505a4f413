// Register numbers from a gdbstub's target description.
//
// QEMU's ppc64 description is target.xml with <xi:include href="..."/> of
// feature files (power64-core.xml, power-fpu.xml, power-altivec.xml,
// power-vsx.xml, power-spr.xml, the last generated for the CPU model). GDB
// numbers the <reg> elements of the features in include order, each one
// after the previous, unless one carries regnum="N": then it is N and the
// count goes on from N + 1. The SPRs svmkit needs (srr0, srr1) have no
// fixed number: it depends on the features before them, so it is read here
// (QEMU 7.2, POWER9: srr0 = 178).
//
// The description comes from QEMU and is untrusted: the scan is bounded
// (register count, name length, numbers), and anything it cannot read is an
// error naming the feature file.
#pragma once

#include "base/error.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace svmkit::platform::gdb {

// The href of each <xi:include> in `target_xml`, in order.
Result<std::vector<std::string>> feature_includes(std::string_view target_xml);

class RegisterMap {
  public:
    // Adds the <reg> elements of one feature file (`name` for messages),
    // numbered after those added before.
    Result<void> add_feature(std::string_view name, std::string_view xml);
    [[nodiscard]] std::optional<unsigned> number(std::string_view reg) const;
    // number(), or an error saying the target description lacks it.
    Result<unsigned> require(std::string_view reg) const;

  private:
    std::vector<std::pair<std::string, unsigned>> regs_; // name -> number, in order
    unsigned next_ = 0;
};

} // namespace svmkit::platform::gdb
