// Portable parts of the freestanding guest runtime, compiled here from the
// same sources the stub links: command-line parameters and sizes (`swiotlb=`)
// and the stub's top-down placement in guest RAM; the FDT helpers
// (/reserved-memory ranges).
#include "guest/cmdline.cpp"      // NOLINT(bugprone-suspicious-include)
#include "guest/fdt_free.cpp"     // NOLINT(bugprone-suspicious-include)
#include "guest/fdt_util.cpp"     // NOLINT(bugprone-suspicious-include)
#include "guest/region_alloc.cpp" // NOLINT(bugprone-suspicious-include)
#include "test_support.hpp"

#include <doctest/doctest.h>
#include <libfdt.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

using namespace svmkit::guest;

namespace {

std::optional<std::string> param(const std::string& cmdline, const char* name) {
    const char* value = nullptr;
    std::size_t len = 0;
    if (!cmdline_param(cmdline.data(), cmdline.size(), name, &value, &len))
        return std::nullopt;
    return std::string(value, len);
}

std::optional<std::uint64_t> size_of(const std::string& s) {
    std::uint64_t v = 0;
    if (!parse_size(s.data(), s.size(), &v))
        return std::nullopt;
    return v;
}

} // namespace

TEST_CASE("guest cmdline: parameters are whole words, the last one counts") {
    CHECK(param("console=hvc0 swiotlb=8M svm=on", "swiotlb") == "8M");
    CHECK(param("swiotlb=8M", "swiotlb") == "8M");
    CHECK(param("a swiotlb=1M\tb swiotlb=2M", "swiotlb") == "2M");
    CHECK(param("xswiotlb=8M", "swiotlb") == std::nullopt);
    CHECK(param("swiotlb", "swiotlb") == std::nullopt);
    CHECK(param("swiotlbx=1", "swiotlb") == std::nullopt);
    CHECK(param("swiotlb=", "swiotlb") == "");
    CHECK(param("", "swiotlb") == std::nullopt);
}

TEST_CASE("guest cmdline: sizes in bytes with K, M or G") {
    CHECK(size_of("65536") == 65536u);
    CHECK(size_of("64K") == 65536u);
    CHECK(size_of("8m") == 8u << 20);
    CHECK(size_of("2G") == 2ull << 30);
    CHECK(size_of("") == std::nullopt);
    CHECK(size_of("M") == std::nullopt);
    CHECK(size_of("0x100000") == std::nullopt);
    CHECK(size_of("8MB") == std::nullopt);
    CHECK(size_of("-1") == std::nullopt);
    CHECK(size_of("18446744073709551615") == ~0ull);
    CHECK(size_of("18446744073709551616") == std::nullopt);
    CHECK(size_of("17179869184G") == std::nullopt); // 2^64
}

TEST_CASE("guest placement: top-down, aligned, around every reserved range") {
    RegionAllocator a(Range{0, 64u << 20});
    REQUIRE(a.reserve(Range{60u << 20, 4u << 20})); // the top 4 MiB
    REQUIRE(a.reserve(Range{0x3800000, 0x10000}));  // a hole-maker at 56 MiB
    Range r;
    REQUIRE(a.allocate(0x20000, 0x10000, &r));
    CHECK(r.base == (60u << 20) - 0x20000);
    CHECK(r.size == 0x20000u);
    // Too big to fit between 56 MiB + 64 KiB and the last allocation: goes below 56 MiB.
    REQUIRE(a.allocate(4u << 20, 0x10000, &r));
    CHECK(r.end() <= 0x3800000u);
    CHECK(r.base % 0x10000 == 0);
    CHECK_FALSE(a.collides(Range{0x3800000 + 0x10000, (60u << 20) - 0x20000 - 0x3810000}));
    // Nothing left that big.
    CHECK_FALSE(a.allocate(60u << 20, 0x10000, &r));
    CHECK_FALSE(a.allocate(0, 0x10000, &r));
    CHECK_FALSE(a.allocate(0x10000, 3, &r));
    // Everything allocated is reserved, so no two overlap.
    Range x;
    Range y;
    REQUIRE(a.allocate(0x10000, 0x10000, &x));
    REQUIRE(a.allocate(0x10000, 0x10000, &y));
    CHECK_FALSE(x.overlaps(y));
}

TEST_CASE("guest ranges: overflow is refused, overlap is exact") {
    Range r;
    CHECK_FALSE(make_range(~0ull - 1, 2, &r));
    CHECK(make_range(~0ull - 1, 1, &r));
    CHECK(Range{0, 16}.overlaps(Range{15, 1}));
    CHECK_FALSE(Range{0, 16}.overlaps(Range{16, 1}));
    CHECK_FALSE(Range{0, 16}.overlaps(Range{8, 0}));
    CHECK(Range{0, 16}.contains(Range{4, 12}));
    CHECK_FALSE(Range{0, 16}.contains(Range{4, 13}));
}

namespace {

// A device tree with /reserved-memory (#address-cells, #size-cells as
// given) and children built by `add(fdt)`.
template <class AddChildren>
std::vector<char> reserved_memory_tree(std::uint32_t ac, std::uint32_t sc, AddChildren add) {
    std::vector<char> buf(4096);
    REQUIRE(fdt_create(buf.data(), static_cast<int>(buf.size())) == 0);
    REQUIRE(fdt_finish_reservemap(buf.data()) == 0);
    REQUIRE(fdt_begin_node(buf.data(), "") == 0);
    REQUIRE(fdt_begin_node(buf.data(), "reserved-memory") == 0);
    REQUIRE(fdt_property_u32(buf.data(), "#address-cells", ac) == 0);
    REQUIRE(fdt_property_u32(buf.data(), "#size-cells", sc) == 0);
    add(buf.data());
    REQUIRE(fdt_end_node(buf.data()) == 0);
    REQUIRE(fdt_end_node(buf.data()) == 0);
    REQUIRE(fdt_finish(buf.data()) == 0);
    return buf;
}

void child(void* fdt, const char* name, const std::vector<std::uint32_t>& reg_cells) {
    REQUIRE(fdt_begin_node(fdt, name) == 0);
    if (!reg_cells.empty()) {
        std::vector<std::uint8_t> reg(reg_cells.size() * 4);
        for (std::size_t i = 0; i < reg_cells.size(); ++i)
            put_be32(&reg[i * 4], reg_cells[i]);
        REQUIRE(fdt_property(fdt, "reg", reg.data(), static_cast<int>(reg.size())) == 0);
    }
    REQUIRE(fdt_end_node(fdt) == 0);
}

} // namespace

TEST_CASE("guest fdt: /reserved-memory ranges (the boot loader keeps clear of a shared pool)") {
    Range out[4];
    SUBCASE("2 + 2 cells; a child without reg is skipped") {
        auto t = reserved_memory_tree(2, 2, [](void* f) {
            child(f, "pool@3fbe0000", {0, 0x3fbe0000, 0, 0x400000});
            child(f, "dynamic", {});
            child(f, "other@1", {1, 0, 0, 0x10000});
        });
        REQUIRE(fdt_reserved_memory(t.data(), out, 4) == 2);
        CHECK(out[0].base == 0x3fbe0000);
        CHECK(out[0].size == 0x400000);
        CHECK(out[1].base == 0x100000000);
        CHECK(out[1].size == 0x10000);
    }
    SUBCASE("1 + 1 cells") {
        auto t = reserved_memory_tree(1, 1, [](void* f) { child(f, "a@1000", {0x1000, 0x2000}); });
        REQUIRE(fdt_reserved_memory(t.data(), out, 4) == 1);
        CHECK(out[0].base == 0x1000);
        CHECK(out[0].size == 0x2000);
    }
    SUBCASE("a reg of the wrong length, too many, a range that wraps, bad cells: -1") {
        auto short_reg = reserved_memory_tree(2, 2, [](void* f) { child(f, "a", {0, 1, 0}); });
        CHECK(fdt_reserved_memory(short_reg.data(), out, 4) == -1);
        auto many = reserved_memory_tree(1, 1, [](void* f) {
            child(f, "a", {0x1000, 1});
            child(f, "b", {0x2000, 1});
        });
        CHECK(fdt_reserved_memory(many.data(), out, 1) == -1);
        auto wraps = reserved_memory_tree(2, 2, [](void* f) {
            child(f, "a", {0xffffffff, 0xffff0000, 0, 0x20000});
        });
        CHECK(fdt_reserved_memory(wraps.data(), out, 4) == -1);
        auto cells = reserved_memory_tree(3, 2, [](void* f) { child(f, "a", {0, 0, 1, 0, 1}); });
        CHECK(fdt_reserved_memory(cells.data(), out, 4) == -1);
    }
    SUBCASE("no /reserved-memory: none") {
        std::vector<char> buf(1024);
        REQUIRE(fdt_create_empty_tree(buf.data(), static_cast<int>(buf.size())) == 0);
        CHECK(fdt_reserved_memory(buf.data(), out, 4) == 0);
    }
}

namespace {

// The stub's kexec-style choice of free memory (stub/ppc64le/main.cpp
// choose_stack): RAM from the tree's first memory node, minus the tree and
// its reserve map, then the stack (256 KiB) top-down.
Range stack_in(const std::vector<std::byte>& tree, std::uint64_t tree_gpa) {
    Range ram;
    REQUIRE(fdt_first_memory(tree.data(), &ram));
    RegionAllocator alloc(ram);
    REQUIRE(reserve_fdt_ranges(tree.data(), tree_gpa, &alloc) == FdtReservations::ok);
    Range stack;
    REQUIRE(alloc.allocate(0x40000, 0x10000, &stack));
    return stack;
}

} // namespace

TEST_CASE("guest free memory: a loader's tree decides where the stub's stack goes") {
    // The fs2dt-form tree (tests/data/fdt): 1 GiB at 0; RTAS, initrd and the
    // tree reserved below 768 MiB.
    auto tree = svmkit::test::read_bytes(SVMKIT_TEST_DATA_DIR "/fdt/kexec-fs2dt.dtb");
    REQUIRE(fdt_check_full_strict(tree.data(), static_cast<uint32_t>(tree.size())) == 0);
    CHECK(stack_in(tree, 0x2ffe0000).base == 0x3ffc0000);

    SUBCASE("the tree itself at the top of RAM") {
        const Range s = stack_in(tree, 0x3ffe0000);
        CHECK(s.end() <= 0x3ffe0000);
        CHECK(s.base == 0x3ffa0000);
    }
    SUBCASE("a reserve-map entry at the top of RAM (a loader's initrd there)") {
        std::vector<std::byte> more(tree.size() + 64);
        REQUIRE(fdt_open_into(tree.data(), more.data(), static_cast<int>(more.size())) == 0);
        REQUIRE(fdt_add_mem_rsv(more.data(), 0x3ff00000, 0x100000) == 0);
        const Range s = stack_in(more, 0x2ffe0000);
        CHECK(s.base == 0x3fec0000);
        for (int i = 0; i < fdt_num_mem_rsv(more.data()); ++i) {
            uint64_t base = 0;
            uint64_t size = 0;
            REQUIRE(fdt_get_mem_rsv(more.data(), i, &base, &size) == 0);
            CHECK_FALSE(s.overlaps(Range{base, size}));
        }
    }
    SUBCASE("a reserve-map entry that wraps around is refused") {
        std::vector<std::byte> more(tree.size() + 64);
        REQUIRE(fdt_open_into(tree.data(), more.data(), static_cast<int>(more.size())) == 0);
        REQUIRE(fdt_add_mem_rsv(more.data(), 0xffffffffffff0000, 0x20000) == 0);
        Range ram;
        REQUIRE(fdt_first_memory(more.data(), &ram));
        RegionAllocator alloc(ram);
        CHECK(reserve_fdt_ranges(more.data(), 0x2ffe0000, &alloc) == FdtReservations::malformed);
    }
}
