// The vhost-user wire protocol (QEMU docs/interop/vhost-user.rst): message
// header, the payloads svmkit uses, and strict decoding of every message a
// back end receives.
//
// A message is a 12-byte header {u32 request; u32 flags; u32 size} followed by
// `size` payload bytes, on a unix stream socket; file descriptors travel as
// SCM_RIGHTS ancillary data with the header. All numbers are little-endian
// (the protocol says "native"; every platform svmkit runs on is little-endian,
// and the codec spells the byte order out so it never depends on struct layout).
//
// Invariant: parse_request() accepts a message only if its payload size is
// exactly what its request carries, its fd count is exactly what it needs,
// and every protocol-level number is in range: region count 1..kMaxRegions;
// regions of non-zero size whose guest, user and file ranges do not overflow
// and whose guest and user ranges do not overlap; config accesses inside the
// 256-byte config space; ring indices below 256; ring sizes powers of two up
// to 32768; ring bases below 65536; enable values 0 or 1; no undefined flag
// bits. Nothing downstream re-checks the shape of a message; the back end's
// session checks only what depends on its state (features it offered, rings
// inside the current memory table).
#pragma once

#include "base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace svmkit::vhost_user {

// Request numbers (front end -> back end). Only the ones svmkit speaks; any
// other number is refused by the back end.
enum class Request : std::uint32_t {
    get_features = 1,
    set_features = 2,
    set_owner = 3,
    reset_owner = 4,
    set_mem_table = 5,
    set_vring_num = 8,
    set_vring_addr = 9,
    set_vring_base = 10,
    get_vring_base = 11,
    set_vring_kick = 12,
    set_vring_call = 13,
    set_vring_err = 14,
    get_protocol_features = 15,
    set_protocol_features = 16,
    get_queue_num = 17,
    set_vring_enable = 18,
    get_config = 24,
    set_config = 25,
};

// The request's name as the specification spells it ("SET_MEM_TABLE"), or
// "request N" for numbers svmkit does not know.
std::string request_name(std::uint32_t request);
inline std::string request_name(Request r) {
    return request_name(static_cast<std::uint32_t>(r));
}

// Header flags.
inline constexpr std::uint32_t kVersionMask = 0x3;
inline constexpr std::uint32_t kVersion = 0x1;
inline constexpr std::uint32_t kFlagReply = 1u << 2;
inline constexpr std::uint32_t kFlagNeedReply = 1u << 3;

inline constexpr std::size_t kHeaderSize = 12;
// Largest payload svmkit sends or accepts: a config access of 256 bytes
// (12-byte config header + 256). A bigger size is a framing error.
inline constexpr std::size_t kMaxConfigSize = 256;
inline constexpr std::size_t kConfigHeaderSize = 12;
inline constexpr std::size_t kMaxPayloadSize = kConfigHeaderSize + kMaxConfigSize;
// SET_MEM_TABLE carries at most 8 regions (VHOST_MEMORY_BASELINE_NREGIONS),
// one fd each; no message carries more fds than that.
inline constexpr std::size_t kMaxRegions = 8;
inline constexpr std::size_t kMaxFds = kMaxRegions;
inline constexpr std::size_t kRegionSize = 32;
inline constexpr std::size_t kMemoryTableHeaderSize = 8;
inline constexpr std::size_t kVringStateSize = 8;
inline constexpr std::size_t kVringAddrSize = 40;
// Ring indices in SET_VRING_KICK/CALL/ERR occupy bits 0-7; bit 8 says "no fd".
inline constexpr std::uint32_t kMaxVringIndex = 0xff;
inline constexpr std::uint64_t kVringIndexMask = 0xff;
inline constexpr std::uint64_t kVringNoFdFlag = 1u << 8;

// Feature bit of GET/SET_FEATURES that announces protocol features.
inline constexpr std::uint64_t kFeatureProtocolFeatures = 1ull << 30;

// Protocol feature bits (GET/SET_PROTOCOL_FEATURES).
inline constexpr std::uint64_t kProtocolMq = 1ull << 0;
inline constexpr std::uint64_t kProtocolReplyAck = 1ull << 3;
inline constexpr std::uint64_t kProtocolConfig = 1ull << 9;

struct Header {
    std::uint32_t request = 0;
    std::uint32_t flags = kVersion;
    std::uint32_t size = 0;
};

// {index, num}: SET_VRING_NUM, SET/GET_VRING_BASE, SET_VRING_ENABLE.
struct VringState {
    std::uint32_t index = 0;
    std::uint32_t num = 0;
};

// SET_VRING_ADDR: ring addresses in the front end's address space ("user
// addresses"), as QEMU sends them when no IOMMU translation is in use.
struct VringAddr {
    std::uint32_t index = 0;
    std::uint32_t flags = 0; // bit 0: log used-ring writes (not supported)
    std::uint64_t desc_user = 0;
    std::uint64_t used_user = 0;
    std::uint64_t avail_user = 0;
    std::uint64_t log_guest = 0;
};

// One SET_MEM_TABLE region: guest-physical [guest_address, +size) is the
// front end's [user_address, +size) and the fd's [mmap_offset, +size).
struct RegionDesc {
    std::uint64_t guest_address = 0;
    std::uint64_t size = 0;
    std::uint64_t user_address = 0;
    std::uint64_t mmap_offset = 0;
};

// SET_VRING_KICK / CALL / ERR: which ring, and whether an fd came with it.
struct VringFile {
    std::uint32_t index = 0;
    bool has_fd = false;
};

// GET_CONFIG / SET_CONFIG: [offset, offset+size) of the device config space.
struct ConfigAccess {
    std::uint32_t offset = 0;
    std::uint32_t flags = 0;
    std::vector<std::byte> data; // size() bytes; zero for GET_CONFIG requests
};

// A decoded front-end request. `body` holds the payload in typed form:
// monostate (no payload), u64, VringState, VringAddr, vector<RegionDesc>,
// VringFile or ConfigAccess, according to the request.
struct ParsedRequest {
    Request request = Request::get_features;
    bool need_reply = false;
    std::variant<std::monostate, std::uint64_t, VringState, VringAddr, std::vector<RegionDesc>,
                 VringFile, ConfigAccess>
        body;
};

// Checks a received header before its payload is read: version 1, only the
// REPLY and NEED_REPLY flag bits, size <= kMaxPayloadSize. `expect_reply`
// says whether the REPLY bit must be set (replies) or clear (requests).
Result<void> check_header(const Header& h, bool expect_reply);

// Decodes and validates one request a back end received (header, payload,
// number of fds that came with it). Never reads outside `payload`.
Result<ParsedRequest> parse_request(const Header& h, std::span<const std::byte> payload,
                                    std::size_t fd_count);

// Encoding helpers for the front end (and for tests that build bad messages).
std::vector<std::byte> encode_header(const Header& h);
std::vector<std::byte> encode_u64(std::uint64_t v);
std::vector<std::byte> encode_vring_state(const VringState& s);
std::vector<std::byte> encode_vring_addr(const VringAddr& a);
std::vector<std::byte> encode_memory_table(std::span<const RegionDesc> regions);
std::vector<std::byte> encode_config(std::uint32_t offset, std::uint32_t flags,
                                     std::span<const std::byte> data);

// Decoding helpers for replies (the front end validates every reply too).
Result<std::uint64_t> decode_u64(std::span<const std::byte> payload, std::string_view what);
Result<VringState> decode_vring_state(std::span<const std::byte> payload, std::string_view what);
Result<ConfigAccess> decode_config(std::span<const std::byte> payload, std::string_view what);

// Little-endian loads and stores on byte spans (bounds are the caller's job:
// the spans passed are always exactly sized).
std::uint16_t load_le16(const std::byte* p);
std::uint32_t load_le32(const std::byte* p);
std::uint64_t load_le64(const std::byte* p);
void store_le16(std::byte* p, std::uint16_t v);
void store_le32(std::byte* p, std::uint32_t v);
void store_le64(std::byte* p, std::uint64_t v);

} // namespace svmkit::vhost_user
