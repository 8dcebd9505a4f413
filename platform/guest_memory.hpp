// Guest RAM of the simulated machine, with secure and shared backing.
//
// Guest-physical memory [0, size) is mapped in the machine (guest) process at
// the fixed virtual address SVMKIT_SIM_GUEST_VA_BASE, so guest code linked for
// GUEST_VA_BASE + gpa runs natively. Each 64 KiB page is backed by one of two
// memfds at the same offset:
//   - hypervisor-visible backing: the memfd a hypervisor process maps; normal
//     and shared pages live here;
//   - secure backing: a memfd only the guest process holds; secure pages live
//     here, and their hypervisor-visible copy is wiped (hole-punched).
//
// Invariants:
//   - pages_[p] says which backing the guest's view of page p maps;
//   - a secure page's hypervisor-visible range is a hole (reads as zero);
//   - a normal or shared page's secure range is a hole;
//   - all address arithmetic goes through range() (bounds- and
//     overflow-checked): no raw pointer math on guest-physical addresses
//     elsewhere.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace svmkit::platform {

enum class PageState : std::uint8_t {
    normal, // a non-secure guest's page: hypervisor-visible
    secure, // only the guest sees it
    shared, // a secure guest shared it back with the hypervisor
};

inline constexpr std::uint64_t kGuestPageSize = 0x10000;
inline constexpr std::uint64_t kGuestPageShift = 16;

class GuestMemory {
  public:
    // Maps `size` bytes (a multiple of 64 KiB) of zeroed guest RAM at the
    // fixed guest base address. Fails if that address range is taken.
    static Result<GuestMemory> create(std::uint64_t size);
    GuestMemory(GuestMemory&&) noexcept;
    GuestMemory& operator=(GuestMemory&&) = delete;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    ~GuestMemory();

    [[nodiscard]] std::uint64_t size() const { return size_; }
    [[nodiscard]] std::uint64_t page_count() const { return pages_.size(); }
    [[nodiscard]] PageState state(std::uint64_t pfn) const { return pages_.at(pfn); }
    [[nodiscard]] std::uint64_t count(PageState s) const;

    // The guest's view of [gpa, gpa+len), bounds- and overflow-checked.
    Result<std::span<std::byte>> range(std::uint64_t gpa, std::uint64_t len);
    Result<void> write(std::uint64_t gpa, std::span<const std::byte> data);
    Result<void> read(std::uint64_t gpa, std::span<std::byte> out);
    // Copies `len` bytes of file `fd` at `offset` to guest-physical `gpa` of a
    // normal (pre-ESM) guest, inside the kernel: no page faults, no bounce
    // through user memory. What firmware loading an image does.
    Result<void> write_from_file(std::uint64_t gpa, int fd, std::uint64_t offset,
                                 std::uint64_t len);
    // Host virtual address of a guest-physical address (for entering guest code).
    Result<std::uintptr_t> host_address(std::uint64_t gpa) const;

    // Moves every page to secure backing (UV_ESM). Returns the number of pages
    // secured. Afterwards the hypervisor-visible memfd holds no guest data.
    Result<std::uint64_t> secure_all();
    // UV_SHARE_PAGE: secure -> shared, contents zeroed.
    Result<void> share(std::uint64_t pfn, std::uint64_t count);
    // UV_UNSHARE_PAGE: shared -> secure, contents kept (copied to secure backing).
    Result<void> unshare(std::uint64_t pfn, std::uint64_t count);

    // The hypervisor-visible backing, for handing to the hypervisor process.
    [[nodiscard]] int hypervisor_fd() const { return hv_fd_.get(); }
    // The secure backing, for the vCPU process (which mirrors this view).
    [[nodiscard]] int secure_fd() const { return secure_fd_.get(); }
    // The pages whose backing changed since the last call, [first, end)
    // (first == end: none), for the vCPU to remap its view the same way.
    std::pair<std::uint64_t, std::uint64_t> take_remapped();

  private:
    GuestMemory() = default;
    Result<void> check_pages(std::uint64_t pfn, std::uint64_t count) const;
    Result<void> map_page_range(std::uint64_t pfn, std::uint64_t count, int fd);

    UniqueFd hv_fd_;
    UniqueFd secure_fd_;
    std::byte* base_ = nullptr;
    std::uint64_t size_ = 0;
    std::vector<PageState> pages_;
    std::uint64_t remapped_first_ = 0, remapped_end_ = 0; // since take_remapped()
};

} // namespace svmkit::platform
