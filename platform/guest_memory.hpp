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
//   - the page state (GuestRam, platform/guest_ram.hpp) says which backing
//     the guest's view of page p maps;
//   - a secure page's hypervisor-visible range is a hole (reads as zero);
//   - a normal or shared page's secure range is a hole;
//   - all address arithmetic goes through range() (bounds- and
//     overflow-checked): no raw pointer math on guest-physical addresses
//     elsewhere.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/guest_ram.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace svmkit::platform {

class GuestMemory final : public GuestRam {
  public:
    // Maps `size` bytes (a multiple of 64 KiB) of zeroed guest RAM at the
    // fixed guest base address. Fails if that address range is taken.
    static Result<GuestMemory> create(std::uint64_t size);
    GuestMemory(GuestMemory&&) noexcept;
    GuestMemory& operator=(GuestMemory&&) = delete;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    ~GuestMemory() override;
    // Copies `len` bytes of file `fd` at `offset` to guest-physical `gpa` of a
    // normal (pre-ESM) guest, inside the kernel: no page faults, no bounce
    // through user memory. What firmware loading an image does.
    Result<void> write_from_file(std::uint64_t gpa, int fd, std::uint64_t offset,
                                 std::uint64_t len);
    // Host virtual address of a guest-physical address (for entering guest code).
    Result<std::uintptr_t> host_address(std::uint64_t gpa) const;

    // secure_all() (GuestRam) moves every page to secure backing: afterwards
    // the hypervisor-visible memfd holds no guest data; unshare() copies the
    // pages to secure backing.

    // The hypervisor-visible backing, for handing to the hypervisor process.
    [[nodiscard]] int hypervisor_fd() const { return hv_fd_.get(); }
    // The secure backing, for the vCPU process (which mirrors this view).
    [[nodiscard]] int secure_fd() const { return secure_fd_.get(); }
    // The pages whose backing changed since the last call, [first, end)
    // (first == end: none), for the vCPU to remap its view the same way.
    std::pair<std::uint64_t, std::uint64_t> take_remapped();

  private:
    explicit GuestMemory(std::uint64_t size) : GuestRam(size) {}
    [[nodiscard]] std::byte* view() const override { return base_; }
    Result<void> move_all_to_secure() override;
    Result<void> move_to_shared(std::uint64_t pfn, std::uint64_t count) override;
    Result<void> move_to_secure(std::uint64_t pfn, std::uint64_t count) override;
    Result<void> map_page_range(std::uint64_t pfn, std::uint64_t count, int fd);

    UniqueFd hv_fd_;
    UniqueFd secure_fd_;
    std::byte* base_ = nullptr;
    std::uint64_t remapped_first_ = 0, remapped_end_ = 0; // since take_remapped()
};

} // namespace svmkit::platform
