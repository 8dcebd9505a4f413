// The memory map table (wrapper/memory_map.hpp).
#include "wrapper/memory_map.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace svmkit::cli {

namespace {

// Two entries in each other's way: sharing a byte, and neither a part of the other.
bool overlap(const MapEntry& a, const MapEntry& b) {
    const bool nested =
        (!a.part_of.empty() && a.part_of == b.name) || (!b.part_of.empty() && b.part_of == a.name);
    return !nested && a.start < a.end && b.start < b.end && a.start < b.end && b.start < a.end;
}

std::string size_text(std::uint64_t v) {
    if (v >= (1ull << 20))
        return fmt::format("{:.1f} MiB", static_cast<double>(v) / (1 << 20));
    if (v >= (1ull << 10))
        return fmt::format("{:.1f} KiB", static_cast<double>(v) / (1 << 10));
    return fmt::format("{} B", v);
}

// Entries in address order, without an entry repeated inside an earlier one.
std::vector<MapEntry> sorted_unique(std::vector<MapEntry> entries) {
    std::stable_sort(entries.begin(), entries.end(), [](const MapEntry& a, const MapEntry& b) {
        return a.start != b.start ? a.start < b.start : a.end > b.end;
    });
    std::vector<MapEntry> out;
    for (MapEntry& e : entries) {
        const bool repeated = std::any_of(out.begin(), out.end(), [&](const MapEntry& o) {
            return o.name == e.name && o.kind == e.kind && o.start <= e.start && e.end <= o.end;
        });
        if (!repeated && e.start < e.end)
            out.push_back(std::move(e));
    }
    return out;
}

} // namespace

std::vector<MapRow> memory_map(std::vector<MapEntry> entries, std::uint64_t ram_start,
                               std::uint64_t ram_end) {
    const std::vector<MapEntry> sorted = sorted_unique(std::move(entries));
    std::vector<MapRow> rows;
    std::uint64_t covered = ram_start; // everything below is in a row already
    for (const MapEntry& e : sorted) {
        if (e.start > covered && covered < ram_end)
            rows.push_back({{"", "free", covered, std::min(e.start, ram_end)}, {}});
        MapRow row{e, {}};
        for (const MapEntry& other : sorted)
            if (&other != &e && overlap(e, other))
                row.overlaps.push_back(other.name);
        rows.push_back(std::move(row));
        covered = std::max(covered, e.end);
    }
    if (covered < ram_end)
        rows.push_back({{"", "free", covered, ram_end}, {}});
    return rows;
}

bool map_has_overlap(const std::vector<MapRow>& rows) {
    return std::any_of(rows.begin(), rows.end(),
                       [](const MapRow& r) { return !r.overlaps.empty(); });
}

std::string memory_map_text(const std::vector<MapRow>& rows) {
    std::string out =
        fmt::format("  {:<12} {:<12} {:>10}  {:<9} {}\n", "start", "end", "size", "kind", "what");
    for (const MapRow& r : rows) {
        std::string line =
            fmt::format("  {:<12} {:<12} {:>10}  {:<9} {}", fmt::format("{:#x}", r.entry.start),
                        fmt::format("{:#x}", r.entry.end), size_text(r.entry.end - r.entry.start),
                        r.entry.kind, r.entry.name);
        if (!r.entry.part_of.empty())
            line += " (in " + r.entry.part_of + ")";
        for (std::size_t i = 0; i < r.overlaps.size(); ++i)
            line += (i == 0 ? "  <- OVERLAPS " : ", ") + r.overlaps[i];
        // Trailing blanks of a row without a name go.
        line.erase(line.find_last_not_of(' ') + 1);
        out += line + "\n";
    }
    return out;
}

Json memory_map_json(const std::vector<MapRow>& rows) {
    Json out = Json::array();
    for (const MapRow& r : rows)
        out.push_back({{"start", fmt::format("{:#x}", r.entry.start)},
                       {"end", fmt::format("{:#x}", r.entry.end)},
                       {"size", r.entry.end - r.entry.start},
                       {"kind", r.entry.kind},
                       {"name", r.entry.name},
                       {"part_of", r.entry.part_of.empty() ? Json(nullptr) : Json(r.entry.part_of)},
                       {"overlaps", r.overlaps}});
    return out;
}

} // namespace svmkit::cli
