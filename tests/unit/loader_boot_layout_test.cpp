// The boot loader's memory rules (loader/boot_layout.h): the constraints it
// builds from its environment (each /memreserve/ entry named by what it
// holds, the firmware's entries first), and refusals that name the segment
// and the range it hits, for the corpus's overlap and RAM cases and for a
// reserved range laid over a real segment.
#include "loader/boot_layout.h"

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace svmkit;
using loader::AddressRange;
using loader::BootConstraints;
using loader::ElfError;
using loader::RangeKind;

namespace {

const std::string kDataDir = std::string(SVMKIT_TEST_DATA_DIR) + "/loader";

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The simulated machine's kexec layout, as platform/normal_boot.cpp gives it.
struct Environment {
    AddressRange memreserve[4] = {{0x3e00000, 0x3e10000}, // the FDT's reservation
                                  {0x3f00000, 0x4000000}, // the stack
                                  {0x8000000, 0x8040000}, // the loader
                                  {0xf000000, 0x10000000}};
    loader::BootEnvironment env{loader::kMachineX86_64,
                                {0, 0x10000000},
                                {0x8000000, 0x8031000},
                                {0x3e00000, 0x3e00800},
                                0x3fffff0,
                                {0xf010000, 0x10000000},
                                memreserve,
                                4,
                                nullptr,
                                0};
};

BootConstraints constraints_of(const loader::BootEnvironment& env) {
    BootConstraints bc{};
    REQUIRE(loader::boot_constraints(env, &bc));
    return bc;
}

// Plans `file` against `bc` and describes the refusal it must give.
loader::LoadRefusal refusal(const std::vector<std::uint8_t>& file, const BootConstraints& bc,
                            ElfError want) {
    loader::LoadPlan plan{};
    loader::ElfErrorDetail d{};
    const ElfError e = loader::plan_elf_load(file.data(), file.size(), bc.c, &plan, &d);
    REQUIRE(std::string(loader::elf_error_name(e)) == loader::elf_error_name(want));
    return loader::describe_refusal(e, d, bc);
}

} // namespace

TEST_CASE("boot layout: the firmware's reservations first, each named by what it holds") {
    Environment t;
    const BootConstraints bc = constraints_of(t.env);
    CHECK(bc.c.machine == loader::kMachineX86_64);
    CHECK(bc.c.ram_end == 0x10000000);
    CHECK(bc.c.max_segment_size == loader::kBootLoaderMaxSegment);
    REQUIRE(bc.c.reserved_count == 6);
    const RangeKind want[] = {RangeKind::device_tree, RangeKind::stack,
                              RangeKind::boot_loader, RangeKind::kexec_image,
                              RangeKind::boot_loader, RangeKind::device_tree};
    for (std::uint32_t i = 0; i < 6; ++i) {
        CAPTURE(i);
        CHECK(bc.kinds[i] == want[i]);
    }
    CHECK(bc.c.reserved[0].end == 0x3e10000); // the reservation, not the FDT's own size
    CHECK(bc.c.reserved[5].end == 0x3e00800);

    SUBCASE("an entry holding nothing of the loader's is the firmware's") {
        t.memreserve[3] = {0x9000000, 0x9010000};
        CHECK(constraints_of(t.env).kinds[3] == RangeKind::firmware);
    }
    SUBCASE("/reserved-memory ranges follow the /memreserve/ ones; empty ranges are left out") {
        const AddressRange pools[2] = {{0xa000000, 0xa400000}, {0xb000000, 0xb000000}};
        t.env.reserved_memory = pools;
        t.env.reserved_memory_count = 2;
        t.memreserve[1] = {0x3f00000, 0x3f00000};
        const BootConstraints more = constraints_of(t.env);
        REQUIRE(more.c.reserved_count == 6);
        CHECK(more.kinds[3] == RangeKind::reserved_memory);
        CHECK(more.c.reserved[3].start == 0xa000000);
    }
    SUBCASE("more ranges than the plan holds") {
        std::vector<AddressRange> many(loader::kMaxReserved, AddressRange{0x9000000, 0x9001000});
        t.env.memreserve = many.data();
        t.env.memreserve_count = static_cast<std::uint32_t>(many.size());
        BootConstraints full{};
        CHECK_FALSE(loader::boot_constraints(t.env, &full));
    }
}

TEST_CASE("boot layout: a refusal names the segment and the range it hits") {
    const auto minimal = read_file(kDataDir + "/good/minimal.elf");
    Environment t;
    BootConstraints bc = constraints_of(t.env);

    SUBCASE("a reserved range over the second segment") {
        // minimal.elf: text at 0x4000000, data at 0x4010000.
        REQUIRE(loader::add_reserved(&bc, {0x4010800, 0x4011000}, RangeKind::image_buffer));
        const loader::LoadRefusal r = refusal(minimal, bc, ElfError::segment_in_reserved);
        CHECK(r.segment == 1);
        CHECK(r.segment_start == 0x4010000);
        CHECK(r.segment_end > 0x4010800);
        CHECK(static_cast<RangeKind>(r.range_kind) == RangeKind::image_buffer);
        CHECK(r.range_start == 0x4010800);
        CHECK(r.range_end == 0x4011000);
    }
    SUBCASE("RAM that ends inside the first segment") {
        bc.c.ram_end = 0x4000100; // the text is 0x200 bytes
        const loader::LoadRefusal r = refusal(minimal, bc, ElfError::segment_outside_ram);
        CHECK(r.segment == 0);
        CHECK(static_cast<RangeKind>(r.range_kind) == RangeKind::guest_ram);
        CHECK(r.range_end == 0x4000100);
    }
    SUBCASE("two segments over each other: the later one is refused, the earlier named") {
        const loader::LoadRefusal r =
            refusal(read_file(kDataDir + "/malformed/segments_overlap.elf"), bc,
                    ElfError::segments_overlap);
        CHECK(r.segment == 1);
        CHECK(static_cast<RangeKind>(r.range_kind) == RangeKind::segment);
        CHECK(r.range_index == 0);
        CHECK(r.range_start < r.segment_end);
        CHECK(r.segment_start < r.range_end);
    }
    SUBCASE("an error about the whole file names no segment") {
        std::vector<std::uint8_t> bad = minimal;
        bad[0] = 'X';
        const loader::LoadRefusal r = refusal(bad, bc, ElfError::bad_magic);
        CHECK(r.segment == loader::kNoIndex);
        CHECK(static_cast<RangeKind>(r.range_kind) == RangeKind::none);
    }
    SUBCASE("a segment fine on its own, then a dynamic header: no segment named") {
        // minimal.elf's second program header made PT_DYNAMIC: the refusal is
        // the file's, not the first segment's (planned fine before it).
        std::vector<std::uint8_t> dyn = minimal;
        dyn.at(64 + 56) = 2;
        loader::LoadPlan plan{};
        loader::ElfErrorDetail d{};
        REQUIRE(loader::plan_elf_load(dyn.data(), dyn.size(), bc.c, &plan, &d) ==
                ElfError::dynamic_image);
        CHECK(d.segment == loader::kNoIndex);
    }
}

TEST_CASE("boot layout: every kind has its own name and identifier") {
    std::set<std::string> names, ids;
    for (int k = 0; k <= static_cast<int>(RangeKind::segment); ++k) {
        names.insert(loader::range_kind_name(static_cast<RangeKind>(k)));
        ids.insert(loader::range_kind_id(static_cast<RangeKind>(k)));
    }
    CHECK(names.size() == static_cast<std::size_t>(RangeKind::segment) + 1);
    CHECK(ids.size() == names.size());
    CHECK(std::string(loader::range_kind_id(static_cast<RangeKind>(99))) == "unknown");
    CHECK(loader::kexec_buffer_base(0x40000000, 0x12345) == 0x3ffe0000);
    CHECK(loader::kexec_buffer_base(0x40000000, 0x10000) == 0x3fff0000);
}
