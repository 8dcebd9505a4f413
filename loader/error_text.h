// The stable name and the human message of one loader error, as the
// error_text() switches of elf_plan.cpp and disk_layout.cpp return them. A
// switch, not a table of pointers: guest code on ppc64le may run away from
// its link address (docs/ppc64le.md), where a table of absolute addresses
// would point at the wrong place.
#pragma once

namespace svmkit::loader::detail {

struct ErrorText {
    const char* name;    // e.g. "segments_overlap"
    const char* message; // short, human
};

} // namespace svmkit::loader::detail
