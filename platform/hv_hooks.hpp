// Test hooks: let a test play the hypervisor from inside the hypervisor
// process, with exactly the access a hypervisor has (its mapping of the
// hypervisor-visible memfd, and whatever the kernel lets it do to the guest's
// process), at the moments a hypervisor sees.
//
// A hook is `EVENT:ACTION`, given to `svmkit boot --hv-hook` (repeatable):
//   EVENT  loaded | esm-start | esm-done | esm-failed | exit | segments-placed
//          | loader-unshared
//          (segments-placed: a loader placed an image's segments, before its
//          purgatory rechecks them; loader-unshared: a secure guest's loader
//          called UV_UNSHARE_ALL_PAGES before its jump; docs/loader-boot.md)
//   ACTION scan=HEX         count occurrences of the bytes in all of
//                           hypervisor-visible memory (reports the first
//                           guest-physical addresses found)
//          read=GPA+LEN     read a range: how many bytes are non-zero, SHA-256
//          write=GPA:HEX    tamper: write the bytes at GPA
//          shared           the pages the guest has shared, as ranges
//          proc-mem         try to read the guest's RAM through
//                           /proc/<guest pid>/mem (must be refused)
// Numbers are decimal or 0x-hex. Each hook that runs appends one JSON object
// per line to the hook log (`--hv-hook-log FILE`): {"event":..,"action":..,...},
// built with nlohmann's JSON (as the CLI's, wrapper/json.hpp), so every
// string is escaped correctly whatever it holds.
#pragma once

#include "base/error.hpp"
#include "platform/hv_protocol.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::platform {

struct HvHook {
    enum class Action { scan, read, write, shared, proc_mem };
    HvEvent at = HvEvent::none;
    Action action = Action::scan;
    std::uint64_t gpa = 0;
    std::uint64_t len = 0;
    std::vector<std::byte> bytes; // scan pattern or bytes to write (non-empty)
    std::string spec;             // as given, for messages
};

Result<HvHook> parse_hv_hook(std::string_view spec);

// What a hook may touch: the hypervisor's own view of guest memory and what
// it knows about sharing.
struct HvHookContext {
    std::span<std::byte> memory; // the hypervisor-visible memfd, mapped
    int memory_fd = -1;          // the same memfd (to skip its holes when scanning)
    // Shared pages as [first pfn, pages) runs, from the ultravisor's notices.
    std::span<const std::pair<std::uint64_t, std::uint64_t>> shared;
    int guest_pid = 0;
    std::uint64_t guest_va_base = 0; // where guest RAM sits in the guest's process
};

using HvHookJson = nlohmann::ordered_json;

// One hook log line: compact, keys in the order set, UTF-8 kept as it is and
// each byte that is not valid UTF-8 replaced by U+FFFD (the CLI's rule,
// docs/cli.md "JSON").
std::string hv_hook_json_line(const HvHookJson& j);

// Runs one hook; returns its JSON log line (without the newline). Bad
// addresses are reported in the line, not as errors: a hostile hypervisor
// poking outside RAM is part of the game.
std::string run_hv_hook(const HvHook& hook, const HvHookContext& ctx);

} // namespace svmkit::platform
