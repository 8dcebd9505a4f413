// What the ultravisor needs of a guest's RAM, whatever holds it: the
// simulated machine's GuestMemory (a secure backing of its own,
// platform/guest_memory.hpp) or the RAM QEMU shares with svmkit
// (platform/qemu/shared_ram.hpp, where secure and shared are bookkeeping).
//
// The page states and their transitions are kept here, once; a backing only
// moves bytes when a transition asks it to (the non-virtual interface calls
// the protected move_* hooks after the checks passed).
//
// Invariants:
//   - pages_[p] is the state of guest page p, and the backing agrees with it
//     (what that means is the backing's own invariant);
//   - every transition checks the whole page range first: a refused call
//     changes nothing;
//   - all guest-physical arithmetic goes through range() (bounds- and
//     overflow-checked).
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace svmkit::platform {

enum class PageState : std::uint8_t {
    normal, // a non-secure guest's page: hypervisor-visible
    secure, // only the guest sees it
    shared, // a secure guest shared it back with the hypervisor
};

// POWER's guest page for the ultracalls (a pfn counts these).
inline constexpr std::uint64_t kGuestPageSize = 0x10000;
inline constexpr std::uint64_t kGuestPageShift = 16;

class GuestRam {
  public:
    GuestRam(const GuestRam&) = delete;
    GuestRam& operator=(const GuestRam&) = delete;
    virtual ~GuestRam() = default;

    [[nodiscard]] std::uint64_t size() const { return pages_.size() * kGuestPageSize; }
    [[nodiscard]] std::uint64_t page_count() const { return pages_.size(); }
    [[nodiscard]] PageState state(std::uint64_t pfn) const { return pages_.at(pfn); }
    [[nodiscard]] std::uint64_t count(PageState s) const;

    // The guest's view of [gpa, gpa+len), bounds- and overflow-checked.
    Result<std::span<std::byte>> range(std::uint64_t gpa, std::uint64_t len);
    Result<void> write(std::uint64_t gpa, std::span<const std::byte> data);
    Result<void> read(std::uint64_t gpa, std::span<std::byte> out);

    // UV_ESM: every page normal -> secure. Returns the number of pages.
    Result<std::uint64_t> secure_all();
    // UV_SHARE_PAGE: secure -> shared, contents zeroed (the hypervisor gets a
    // fresh page, as from a real ultravisor).
    Result<void> share(std::uint64_t pfn, std::uint64_t count);
    // UV_UNSHARE_PAGE: shared -> secure, contents kept.
    Result<void> unshare(std::uint64_t pfn, std::uint64_t count);

  protected:
    // `size` bytes, a non-zero multiple of kGuestPageSize (checked by
    // check_size before the backing is made), all pages normal.
    explicit GuestRam(std::uint64_t size) : pages_(size / kGuestPageSize, PageState::normal) {}
    GuestRam(GuestRam&&) noexcept = default;
    static Result<void> check_size(std::uint64_t size);

    // The guest's view of all of RAM.
    [[nodiscard]] virtual std::byte* view() const = 0;
    // Called with the checks passed and pages_ not yet changed.
    virtual Result<void> move_all_to_secure() = 0;
    virtual Result<void> move_to_shared(std::uint64_t pfn, std::uint64_t count) = 0;
    virtual Result<void> move_to_secure(std::uint64_t pfn, std::uint64_t count) = 0;

  private:
    Result<void> require(std::uint64_t pfn, std::uint64_t count, PageState from) const;
    void set(std::uint64_t pfn, std::uint64_t count, PageState to);

    std::vector<PageState> pages_;
};

} // namespace svmkit::platform
