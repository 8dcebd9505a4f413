// Ways svmkit-vhost-blk misbehaves on purpose (--hostile MODE), so tests can
// show that a hardened guest driver and the platform detect or contain each
// one. docs/vhost-user.md describes what each mode does and what must notice.
#pragma once

#include "base/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace svmkit::vhost_user {

enum class HostileMode {
    none,
    // Completions name descriptor id head + queue size (>= queue size).
    used_id_out_of_range,
    // Every request is completed twice (two used entries, one idx update).
    duplicate_completion,
    // Used len = the chain's device-writable bytes + 4096.
    len_too_large,
    // Used idx advances by queue size + 1 per completion.
    used_idx_jump,
    // After a request completed, every buffer of its chain is overwritten
    // with 0xEE (at the next kick, before new requests are looked at).
    rewrite_bounce_after_completion,
    // Before completing, the chain's descriptors in the shared table are
    // overwritten (addr ~0, len ~0, flags NEXT|WRITE, next = head: a loop).
    rewrite_descriptors,
    // The call eventfd is signalled 1000 times per completion and every
    // 10 ms while a ring is running, whether or not anything completed.
    interrupt_storm,
    // GET_FEATURES withholds VIRTIO_F_ACCESS_PLATFORM (bit 33).
    no_access_platform,
    // Every completion also writes kHostileDmaMarker through the region's fd
    // into the first page of the file outside every region of the current
    // memory table: memory the guest did not share with the device.
    dma_outside_shared,
};

inline constexpr std::string_view kHostileDmaMarker = "svmkit-vhost-blk hostile dma";
inline constexpr unsigned char kHostileRewriteByte = 0xEE;

// "used-id-out-of-range", ... ("none" for none).
std::string_view hostile_mode_name(HostileMode mode);
Result<HostileMode> parse_hostile_mode(std::string_view name);

// --hostile MODE[@N]: the mode, after N requests served honestly (0: from
// the first), so that an attack can hit a driver with requests in flight
// rather than its first one. no-access-platform acts at feature negotiation,
// before any request: it takes no @N.
struct HostileSpec {
    HostileMode mode = HostileMode::none;
    std::uint64_t after = 0;
};
Result<HostileSpec> parse_hostile_spec(std::string_view spec);
// Every mode name except "none", comma-separated (for --help).
std::string hostile_mode_list();

} // namespace svmkit::vhost_user
