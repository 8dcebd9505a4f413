// The back end's view of guest memory: the regions of the current
// SET_MEM_TABLE, each mapped from its fd.
//
// Invariants:
//   - each region maps exactly the fd's [mmap_offset, mmap_offset+size)
//     (plus the page rounding below mmap_offset), and only after fstat showed
//     the file is at least that long, so touching a mapped byte never faults
//     on a file that was already short;
//   - guest_range()/user_range() return a pointer only when the whole
//     [address, address+len) lies inside one region (checked arithmetic);
//     nothing else turns a guest-supplied number into a pointer;
//   - the table is immutable once built; a new SET_MEM_TABLE builds a new
//     table and the old one's destructor unmaps its regions.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/vhost_user/protocol.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace svmkit::vhost_user {

class MemoryTable {
  public:
    struct Region {
        RegionDesc desc;
        std::byte* host = nullptr;     // desc.guest_address maps here
        std::byte* map_base = nullptr; // what mmap returned (page-aligned)
        std::size_t map_len = 0;
        UniqueFd fd; // kept: only the hostile dma-outside-shared mode uses it
        std::uint64_t file_size = 0;
    };

    MemoryTable() = default;
    MemoryTable(MemoryTable&&) noexcept = default;
    MemoryTable& operator=(MemoryTable&& other) noexcept;
    MemoryTable(const MemoryTable&) = delete;
    MemoryTable& operator=(const MemoryTable&) = delete;
    ~MemoryTable();

    // Maps every region (regions and fds as parse_request validated them:
    // same count). On failure nothing stays mapped.
    static Result<MemoryTable> map(std::span<const RegionDesc> regions, std::vector<UniqueFd> fds);

    [[nodiscard]] bool empty() const { return regions_.empty(); }
    [[nodiscard]] std::span<const Region> regions() const { return regions_; }

    // Host pointer to guest-physical [gpa, gpa+len), or nullopt.
    [[nodiscard]] std::optional<std::byte*> guest_range(std::uint64_t gpa, std::uint64_t len) const;
    // Host pointer to front-end user address [uva, uva+len), or nullopt.
    [[nodiscard]] std::optional<std::byte*> user_range(std::uint64_t uva, std::uint64_t len) const;

  private:
    void unmap_all();
    std::vector<Region> regions_;
};

} // namespace svmkit::vhost_user
