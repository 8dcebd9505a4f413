// Fuzz target: the guest loader's strict ELF validation (loader/elf_plan)
// and, for every image it accepts, placement and the purgatory recheck
// (loader/segment_digest). The input is the image file. Beyond "no crash, no
// out-of-bounds read" the target checks the plan's documented invariants
// (loader/elf_plan.h) and that a changed byte is caught: a violation aborts.
#include "loader/segment_digest.h"

#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

using namespace svmkit::loader;

// A small machine, so that placing an accepted image is cheap: 6 MiB of RAM
// around the image base, the simulated firmware's FDT and stack reserved.
constexpr uint64_t kRamStart = 0x3e00000;
constexpr uint64_t kRamEnd = 0x4400000;

LoadConstraints constraints() {
    LoadConstraints c{};
    c.machine = kMachineX86_64;
    c.ram_start = kRamStart;
    c.ram_end = kRamEnd;
    c.reserved[0] = {0x3e00000, 0x3e10000};
    c.reserved[1] = {0x3f00000, 0x4000000};
    c.reserved_count = 2;
    c.max_segment_size = 4u << 20;
    return c;
}

std::vector<uint8_t>& ram() {
    static std::vector<uint8_t> bytes(kRamEnd - kRamStart);
    return bytes;
}

uint8_t* to_pointer(void*, uint64_t gpa, uint64_t size) {
    if (gpa < kRamStart || gpa > kRamEnd || size > kRamEnd - gpa)
        return nullptr;
    return ram().data() + (gpa - kRamStart);
}

void require(bool ok) {
    if (!ok)
        std::abort();
}

void check_plan(const LoadPlan& p, uint64_t file_size, const LoadConstraints& c) {
    require(p.count >= 1 && p.count <= kMaxSegments);
    bool entry_ok = false;
    for (uint32_t i = 0; i < p.count; ++i) {
        const PlannedSegment& s = p.segments[i];
        require(s.file_offset <= file_size && s.file_size <= file_size - s.file_offset);
        require(s.file_size <= s.mem_size && s.mem_size <= c.max_segment_size);
        require(s.address >= c.ram_start && s.address <= c.ram_end &&
                s.mem_size <= c.ram_end - s.address);
        for (uint32_t r = 0; r < c.reserved_count; ++r)
            require(s.address + s.mem_size <= c.reserved[r].start ||
                    s.address >= c.reserved[r].end);
        for (uint32_t j = i + 1; j < p.count; ++j) {
            const PlannedSegment& t = p.segments[j];
            require(s.address + s.mem_size <= t.address || t.address + t.mem_size <= s.address);
            require(s.file_size == 0 || t.file_size == 0 ||
                    s.file_offset + s.file_size <= t.file_offset ||
                    t.file_offset + t.file_size <= s.file_offset);
        }
        if (s.executable && p.entry >= s.address && p.entry - s.address < s.file_size)
            entry_ok = true;
    }
    require(entry_ok);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // An exact-size heap copy: a read one past the end is an ASan report.
    std::vector<uint8_t> file(data, data + size);
    const LoadConstraints c = constraints();
    LoadPlan plan{};
    const ElfError e = plan_elf_load(file.empty() ? nullptr : file.data(), size, c, &plan);
    require(std::strlen(elf_error_message(e)) > 0);
    if (e != ElfError::none)
        return 0;
    check_plan(plan, size, c);
    SegmentDigests digests{};
    require(place_segments(file.data(), plan, to_pointer, nullptr, &digests));
    require(recheck_segments(plan, digests, to_pointer, nullptr) == -1);
    // One changed byte in the last segment is caught with its index.
    const PlannedSegment& last = plan.segments[plan.count - 1];
    uint8_t* p = to_pointer(nullptr, last.address + last.mem_size / 2, 1);
    *p ^= 0x5a;
    require(recheck_segments(plan, digests, to_pointer, nullptr) ==
            static_cast<int32_t>(plan.count - 1));
    return 0;
}
