// Guest RAM that QEMU holds and shares with svmkit: a file in svmkit's
// private directory, QEMU's memory-backend-file (share=on) and svmkit's
// mapping of the same file, so the attached ultravisor reads and writes
// guest-physical memory directly (never through the gdbstub).
//
// Under TCG nothing protects memory: "secure" and "shared" are the
// ultravisor's bookkeeping (GuestRam), and QEMU's devices can read every
// page. What does hold is what the guest sees: UV_SHARE_PAGE gives it zeroed
// pages, as a real ultravisor does, and the ultravisor checks the image in
// this memory while the guest is stopped at its ultracall.
//
// Invariants: the mapping covers exactly size() bytes of the file, which is
// at least that long (sized here, before QEMU starts); it is unmapped once.
#pragma once

#include "base/error.hpp"
#include "platform/guest_ram.hpp"

#include <string>

namespace svmkit::platform::qemu {

class SharedGuestRam final : public GuestRam {
  public:
    // Creates `path` (it must not exist; mode 0600), sizes it to `size`
    // bytes (a multiple of 64 KiB) and maps it.
    static Result<SharedGuestRam> create(const std::string& path, std::uint64_t size);
    SharedGuestRam(SharedGuestRam&&) noexcept;
    SharedGuestRam& operator=(SharedGuestRam&&) = delete;
    ~SharedGuestRam() override;

  private:
    SharedGuestRam(std::uint64_t size, std::byte* base) : GuestRam(size), base_(base) {}
    [[nodiscard]] std::byte* view() const override { return base_; }
    Result<void> move_all_to_secure() override { return {}; }
    Result<void> move_to_shared(std::uint64_t pfn, std::uint64_t count) override;
    Result<void> move_to_secure(std::uint64_t, std::uint64_t) override { return {}; }

    std::byte* base_ = nullptr;
};

} // namespace svmkit::platform::qemu
