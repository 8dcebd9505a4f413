// The memory map table (wrapper/memory_map.hpp): rows sorted by address, the
// free space between them as rows of its own, overlaps marked on both rows,
// a range reserved twice shown once, and the same rows in text and JSON.
#include "wrapper/memory_map.hpp"

#include <doctest/doctest.h>

using namespace svmkit::cli;

TEST_CASE("memory map: sorted, gaps filled, overlaps marked on both sides") {
    const std::vector<MapRow> rows = memory_map(
        {
            {"the boot loader", "reserved", 0x8000000, 0x8031000},
            {"segment 0 (r-x)", "segment", 0x4000000, 0x4050000},
            {"segment 1 (r--)", "segment", 0x4050000, 0x8100000},
            {"the device tree", "reserved", 0x3e00000, 0x3e10000},
            {"the boot loader", "reserved", 0x8000000, 0x8020000}, // reserved twice
            {"empty", "reserved", 0x5000000, 0x5000000},
        },
        0, 0x10000000);
    struct Want {
        const char* kind;
        const char* name;
        std::uint64_t start, end;
        std::size_t overlaps;
    };
    const Want want[] = {
        {"free", "", 0, 0x3e00000, 0},
        {"reserved", "the device tree", 0x3e00000, 0x3e10000, 0},
        {"free", "", 0x3e10000, 0x4000000, 0},
        {"segment", "segment 0 (r-x)", 0x4000000, 0x4050000, 0},
        {"segment", "segment 1 (r--)", 0x4050000, 0x8100000, 1},
        {"reserved", "the boot loader", 0x8000000, 0x8031000, 1},
        {"free", "", 0x8100000, 0x10000000, 0},
    };
    REQUIRE(rows.size() == std::size(want));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        CAPTURE(i);
        CHECK(rows[i].entry.kind == want[i].kind);
        CHECK(rows[i].entry.name == want[i].name);
        CHECK(rows[i].entry.start == want[i].start);
        CHECK(rows[i].entry.end == want[i].end);
        CHECK(rows[i].overlaps.size() == want[i].overlaps);
    }
    CHECK(rows[4].overlaps[0] == "the boot loader");
    CHECK(rows[5].overlaps[0] == "segment 1 (r--)");
    CHECK(map_has_overlap(rows));

    const std::string text = memory_map_text(rows);
    CAPTURE(text);
    CHECK(text.find("  0x8000000    0x8031000     196.0 KiB  reserved  the boot loader  <- "
                    "OVERLAPS segment 1 (r--)\n") != std::string::npos);
    CHECK(text.find("  0x3e10000    0x4000000       1.9 MiB  free\n") != std::string::npos);
    const Json j = memory_map_json(rows);
    REQUIRE(j.size() == rows.size());
    CHECK(j[5]["start"] == "0x8000000");
    CHECK(j[5]["size"] == 0x31000);
    CHECK(j[5]["overlaps"] == Json::array({"segment 1 (r--)"}));
    CHECK(j[0]["kind"] == "free");
}

TEST_CASE("memory map: nothing to show is all free, adjacent ranges do not overlap") {
    const auto empty = memory_map({}, 0x1000, 0x2000);
    REQUIRE(empty.size() == 1);
    CHECK(empty[0].entry.kind == "free");
    CHECK(empty[0].entry.start == 0x1000);
    const auto touching = memory_map(
        {{"a", "segment", 0x1000, 0x1800}, {"b", "segment", 0x1800, 0x2000}}, 0x1000, 0x2000);
    REQUIRE(touching.size() == 2);
    CHECK_FALSE(map_has_overlap(touching));
    // A range past the end of RAM is shown, with no free row after it.
    const auto past = memory_map({{"c", "segment", 0x1800, 0x3000}}, 0x1000, 0x2000);
    REQUIRE(past.size() == 2);
    CHECK(past[1].entry.end == 0x3000);
}

TEST_CASE("memory map: a part of another entry is not an overlap, other sharers still are") {
    const auto rows = memory_map({{"the image", "image", 0x1000, 0x3000},
                                  {"the initrd", "initrd", 0x2000, 0x2800, "the image"},
                                  {"the pool", "shared", 0x2400, 0x2600}},
                                 0x1000, 0x3000);
    REQUIRE(rows.size() == 3);
    CHECK(rows[1].entry.name == "the initrd");
    REQUIRE(rows[1].overlaps.size() == 1);
    CHECK(rows[1].overlaps[0] == "the pool");
    REQUIRE(rows[0].overlaps.size() == 1); // the image and the pool
    CHECK(rows[0].overlaps[0] == "the pool");
    CHECK(memory_map_text(rows).find("initrd    the initrd (in the image)  <- OVERLAPS the pool") !=
          std::string::npos);
    CHECK(memory_map_json(rows)[1]["part_of"] == "the image");
    CHECK(memory_map_json(rows)[0]["part_of"].is_null());
}
