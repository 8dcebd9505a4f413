// boot.cfg: the grub-style boot menu on an svmkit boot disk (docs/loader.md,
// "boot.cfg").
//
//     # comment
//     set default="sample"          (or set default=sample)
//     set timeout=5
//     menuentry "sample" {
//         linux /images/sample.img console=hvc0 svm=on
//     }
//
// One statement per line; '#' starts a comment line; blank lines are fine;
// '\r' before '\n' is ignored. `menuentry "NAME" {` opens an entry (the '{'
// on the same line), `}` alone closes it, and each entry holds exactly one
// `linux PATH [ARGS...]` (PATH absolute, ARGS the rest of the line, trimmed).
// Anything else is an error naming the line. The default is the entry whose
// name matches `set default` EXACTLY (no prefixes, no indices), or the first
// entry when there is no `set default`.
//
// The file is untrusted (it comes from the disk): every length is bounded,
// every field is copied into fixed-size, NUL-terminated arrays, and parsing
// never reads outside [text, text + size).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace svmkit::loader {

constexpr uint32_t kMaxEntries = 16;
constexpr uint32_t kMaxEntryName = 63;  // bytes, without the NUL
constexpr uint32_t kMaxImagePath = 127; // bytes, without the NUL
constexpr uint32_t kMaxCmdline = 1023;  // bytes, without the NUL
constexpr uint64_t kMaxBootCfgSize = 65536;

struct BootEntry {
    char name[kMaxEntryName + 1];
    char image_path[kMaxImagePath + 1];
    char cmdline[kMaxCmdline + 1];
};

// Invariants after parse_boot_cfg() returned true: 1 <= count <= kMaxEntries,
// names distinct and non-empty, every image_path starts with '/', 0 <=
// default_index < count. About 19 KiB: keep it off small stacks.
struct BootMenu {
    BootEntry entries[kMaxEntries];
    uint32_t count;
    int32_t default_index;
    uint32_t timeout; // seconds; 0 when not set
};

// line: 1-based line of the problem (0 for the file as a whole); message
// names the problem ("unknown keyword", "unterminated menuentry"), never null.
struct BootCfgError {
    uint32_t line;
    const char* message;
};

// Parses `size` bytes of `text` (need not be NUL-terminated). On failure
// returns false with *err set; *menu is then unspecified.
bool parse_boot_cfg(const char* text, uint64_t size, BootMenu* menu, BootCfgError* err);

// The index of the entry named exactly `name` (NUL-terminated), or -1.
int32_t find_boot_entry(const BootMenu& menu, const char* name);

} // namespace svmkit::loader
