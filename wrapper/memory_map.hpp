// Where things land in guest memory, as one table sorted by address with the
// free space between them and every overlap marked (docs/loader.md, "Memory
// map"). The commands collect what they know (`svmkit load --plan`: the
// loader's reserved ranges and the image's segments); this module orders,
// marks and prints it, the same way for each.
#pragma once

#include "wrapper/json.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace svmkit::cli {

struct MapEntry {
    std::string name; // "segment 4", "the boot loader"
    std::string kind; // "segment", "reserved", ...; "free" for the gaps the map adds
    std::uint64_t start = 0, end = 0; // [start, end)
    // The entry this one is a part of (the initrd inside the image): the two
    // are not an overlap.
    std::string part_of = {};
};

struct MapRow {
    MapEntry entry;
    std::vector<std::string> overlaps; // the names of the entries sharing a byte with it
};

// The entries sorted by start (then end), with a "free" row for every gap in
// [ram_start, ram_end) that no entry covers; an entry of the same name and
// kind inside an earlier one is left out (a range the loader reserves twice).
std::vector<MapRow> memory_map(std::vector<MapEntry> entries, std::uint64_t ram_start,
                               std::uint64_t ram_end);
// True when some row overlaps another.
bool map_has_overlap(const std::vector<MapRow>& rows);

// "  0x3e00000    0x3e10000    64.0 KiB   reserved  the device tree", one line a
// row, "  <- OVERLAPS segment 4" after a row that overlaps.
std::string memory_map_text(const std::vector<MapRow>& rows);
// [{"start", "end", "size", "kind", "name", "overlaps": [names]}...]
Json memory_map_json(const std::vector<MapRow>& rows);

} // namespace svmkit::cli
