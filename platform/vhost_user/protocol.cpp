#include "platform/vhost_user/protocol.hpp"

#include "base/checked.hpp"

#include <fmt/format.h>
#include <limits>

namespace svmkit::vhost_user {

std::uint16_t load_le16(const std::byte* p) {
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                      (std::to_integer<unsigned>(p[1]) << 8));
}

std::uint32_t load_le32(const std::byte* p) {
    return static_cast<std::uint32_t>(load_le16(p)) |
           (static_cast<std::uint32_t>(load_le16(p + 2)) << 16);
}

std::uint64_t load_le64(const std::byte* p) {
    return static_cast<std::uint64_t>(load_le32(p)) |
           (static_cast<std::uint64_t>(load_le32(p + 4)) << 32);
}

void store_le16(std::byte* p, std::uint16_t v) {
    p[0] = static_cast<std::byte>(v & 0xff);
    p[1] = static_cast<std::byte>(v >> 8);
}

void store_le32(std::byte* p, std::uint32_t v) {
    store_le16(p, static_cast<std::uint16_t>(v & 0xffff));
    store_le16(p + 2, static_cast<std::uint16_t>(v >> 16));
}

void store_le64(std::byte* p, std::uint64_t v) {
    store_le32(p, static_cast<std::uint32_t>(v & 0xffffffff));
    store_le32(p + 4, static_cast<std::uint32_t>(v >> 32));
}

std::string request_name(std::uint32_t request) {
    switch (static_cast<Request>(request)) {
    case Request::get_features:
        return "GET_FEATURES";
    case Request::set_features:
        return "SET_FEATURES";
    case Request::set_owner:
        return "SET_OWNER";
    case Request::reset_owner:
        return "RESET_OWNER";
    case Request::set_mem_table:
        return "SET_MEM_TABLE";
    case Request::set_vring_num:
        return "SET_VRING_NUM";
    case Request::set_vring_addr:
        return "SET_VRING_ADDR";
    case Request::set_vring_base:
        return "SET_VRING_BASE";
    case Request::get_vring_base:
        return "GET_VRING_BASE";
    case Request::set_vring_kick:
        return "SET_VRING_KICK";
    case Request::set_vring_call:
        return "SET_VRING_CALL";
    case Request::set_vring_err:
        return "SET_VRING_ERR";
    case Request::get_protocol_features:
        return "GET_PROTOCOL_FEATURES";
    case Request::set_protocol_features:
        return "SET_PROTOCOL_FEATURES";
    case Request::get_queue_num:
        return "GET_QUEUE_NUM";
    case Request::set_vring_enable:
        return "SET_VRING_ENABLE";
    case Request::get_config:
        return "GET_CONFIG";
    case Request::set_config:
        return "SET_CONFIG";
    }
    return fmt::format("request {}", request);
}

Result<void> check_header(const Header& h, bool expect_reply) {
    const std::string name = request_name(h.request);
    if ((h.flags & kVersionMask) != kVersion)
        return fail(ExitCode::malformed, "{}: protocol version {} (flags {:#x}), expected 1", name,
                    h.flags & kVersionMask, h.flags);
    if ((h.flags & ~(kVersionMask | kFlagReply | kFlagNeedReply)) != 0)
        return fail(ExitCode::malformed, "{}: undefined flag bits {:#x}", name, h.flags);
    if (((h.flags & kFlagReply) != 0) != expect_reply)
        return fail(ExitCode::malformed, "{}: {}", name,
                    expect_reply ? "reply lacks the REPLY flag" : "request has the REPLY flag");
    if (h.size > kMaxPayloadSize)
        return fail(ExitCode::malformed, "{}: payload of {} bytes, more than the maximum {}", name,
                    h.size, kMaxPayloadSize);
    return {};
}

namespace {

Result<void> expect_size(std::span<const std::byte> payload, std::size_t want,
                         std::string_view name) {
    if (payload.size() != want)
        return fail(ExitCode::malformed, "{}: payload is {} bytes, expected {}", name,
                    payload.size(), want);
    return {};
}

Result<void> expect_fds(std::size_t got, std::size_t want, std::string_view name) {
    if (got != want)
        return fail(ExitCode::malformed, "{}: came with {} file descriptors, expected {}", name,
                    got, want);
    return {};
}

Result<std::uint32_t> vring_index(std::uint32_t index, std::string_view name) {
    if (index > kMaxVringIndex)
        return fail(ExitCode::malformed, "{}: ring index {} is out of range", name, index);
    return index;
}

Result<VringState> parse_state(std::span<const std::byte> payload, std::string_view name) {
    SVM_CHECK(expect_size(payload, kVringStateSize, name));
    VringState s{load_le32(payload.data()), load_le32(payload.data() + 4)};
    SVM_CHECK(vring_index(s.index, name));
    return s;
}

Result<std::vector<RegionDesc>> parse_memory_table(std::span<const std::byte> payload,
                                                   std::size_t fd_count, std::string_view name) {
    if (payload.size() < kMemoryTableHeaderSize)
        return fail(ExitCode::malformed, "{}: payload of {} bytes has no region count", name,
                    payload.size());
    const std::uint32_t count = load_le32(payload.data());
    if (count == 0 || count > kMaxRegions)
        return fail(ExitCode::malformed, "{}: {} regions, expected 1 to {}", name, count,
                    kMaxRegions);
    SVM_CHECK(expect_size(payload, kMemoryTableHeaderSize + count * kRegionSize, name));
    SVM_CHECK(expect_fds(fd_count, count, name));
    std::vector<RegionDesc> regions;
    for (std::uint32_t i = 0; i < count; ++i) {
        const std::byte* r = payload.data() + kMemoryTableHeaderSize + i * kRegionSize;
        RegionDesc d{load_le64(r), load_le64(r + 8), load_le64(r + 16), load_le64(r + 24)};
        if (d.size == 0)
            return fail(ExitCode::malformed, "{}: region {} is empty", name, i);
        if (!checked_add(d.guest_address, d.size))
            return fail(ExitCode::malformed,
                        "{}: region {} guest range {:#x}+{:#x} overflows 64 bits", name, i,
                        d.guest_address, d.size);
        if (!checked_add(d.user_address, d.size))
            return fail(ExitCode::malformed,
                        "{}: region {} user range {:#x}+{:#x} overflows 64 bits", name, i,
                        d.user_address, d.size);
        auto file_end = checked_add(d.mmap_offset, d.size);
        if (!file_end || *file_end > static_cast<std::uint64_t>(std::numeric_limits<off_t>::max()))
            return fail(ExitCode::malformed,
                        "{}: region {} file range {:#x}+{:#x} exceeds the largest file offset",
                        name, i, d.mmap_offset, d.size);
        for (std::uint32_t j = 0; j < i; ++j) {
            const RegionDesc& o = regions[j];
            if (ranges_overlap(d.guest_address, d.size, o.guest_address, o.size))
                return fail(ExitCode::malformed, "{}: regions {} and {} overlap in guest memory",
                            name, j, i);
            if (ranges_overlap(d.user_address, d.size, o.user_address, o.size))
                return fail(ExitCode::malformed, "{}: regions {} and {} overlap in user addresses",
                            name, j, i);
        }
        regions.push_back(d);
    }
    return regions;
}

Result<VringFile> parse_vring_file(std::span<const std::byte> payload, std::size_t fd_count,
                                   std::string_view name) {
    SVM_CHECK(expect_size(payload, 8, name));
    const std::uint64_t v = load_le64(payload.data());
    if ((v & ~(kVringIndexMask | kVringNoFdFlag)) != 0)
        return fail(ExitCode::malformed, "{}: undefined bits in {:#x}", name, v);
    VringFile f{static_cast<std::uint32_t>(v & kVringIndexMask), (v & kVringNoFdFlag) == 0};
    SVM_CHECK(expect_fds(fd_count, f.has_fd ? 1 : 0, name));
    return f;
}

Result<ConfigAccess> parse_config(std::span<const std::byte> payload, bool with_data,
                                  std::string_view name) {
    if (payload.size() < kConfigHeaderSize)
        return fail(ExitCode::malformed, "{}: payload of {} bytes is shorter than its header", name,
                    payload.size());
    ConfigAccess c;
    c.offset = load_le32(payload.data());
    const std::uint32_t size = load_le32(payload.data() + 4);
    c.flags = load_le32(payload.data() + 8);
    SVM_CHECK(expect_size(payload, kConfigHeaderSize + std::uint64_t{size}, name));
    if (size == 0 || std::uint64_t{c.offset} + size > kMaxConfigSize)
        return fail(ExitCode::malformed, "{}: config range {}+{} is outside the {}-byte space",
                    name, c.offset, size, kMaxConfigSize);
    if (c.flags > 1)
        return fail(ExitCode::malformed, "{}: undefined config flags {:#x}", name, c.flags);
    c.data.assign(size, std::byte{0});
    if (with_data)
        std::copy(payload.begin() + kConfigHeaderSize, payload.end(), c.data.begin());
    return c;
}

} // namespace

Result<ParsedRequest> parse_request(const Header& h, std::span<const std::byte> payload,
                                    std::size_t fd_count) {
    SVM_CHECK(check_header(h, false));
    const std::string name = request_name(h.request);
    if (payload.size() != h.size)
        return fail(ExitCode::malformed, "{}: header says {} payload bytes, got {}", name, h.size,
                    payload.size());
    ParsedRequest p;
    p.request = static_cast<Request>(h.request);
    p.need_reply = (h.flags & kFlagNeedReply) != 0;
    switch (p.request) {
    case Request::get_features:
    case Request::set_owner:
    case Request::reset_owner:
    case Request::get_protocol_features:
    case Request::get_queue_num:
        SVM_CHECK(expect_size(payload, 0, name));
        SVM_CHECK(expect_fds(fd_count, 0, name));
        return p;
    case Request::set_features:
    case Request::set_protocol_features:
        SVM_CHECK(expect_size(payload, 8, name));
        SVM_CHECK(expect_fds(fd_count, 0, name));
        p.body = load_le64(payload.data());
        return p;
    case Request::set_mem_table: {
        SVM_TRY(regions, parse_memory_table(payload, fd_count, name));
        p.body = std::move(regions);
        return p;
    }
    case Request::set_vring_num: {
        SVM_TRY(s, parse_state(payload, name));
        SVM_CHECK(expect_fds(fd_count, 0, name));
        if (s.num == 0 || s.num > 32768 || (s.num & (s.num - 1)) != 0)
            return fail(ExitCode::malformed,
                        "{}: ring size {} is not a power of two between 1 and 32768", name, s.num);
        p.body = s;
        return p;
    }
    case Request::set_vring_base: {
        SVM_TRY(s, parse_state(payload, name));
        SVM_CHECK(expect_fds(fd_count, 0, name));
        if (s.num > 0xffff)
            return fail(ExitCode::malformed, "{}: ring base {} does not fit 16 bits", name, s.num);
        p.body = s;
        return p;
    }
    case Request::get_vring_base: {
        SVM_TRY(s, parse_state(payload, name));
        SVM_CHECK(expect_fds(fd_count, 0, name));
        p.body = s;
        return p;
    }
    case Request::set_vring_enable: {
        SVM_TRY(s, parse_state(payload, name));
        SVM_CHECK(expect_fds(fd_count, 0, name));
        if (s.num > 1)
            return fail(ExitCode::malformed, "{}: enable value {} is neither 0 nor 1", name, s.num);
        p.body = s;
        return p;
    }
    case Request::set_vring_addr: {
        SVM_CHECK(expect_size(payload, kVringAddrSize, name));
        SVM_CHECK(expect_fds(fd_count, 0, name));
        const std::byte* b = payload.data();
        VringAddr a{load_le32(b),      load_le32(b + 4),  load_le64(b + 8),
                    load_le64(b + 16), load_le64(b + 24), load_le64(b + 32)};
        SVM_CHECK(vring_index(a.index, name));
        if (a.flags != 0)
            return fail(ExitCode::malformed, "{}: ring flags {:#x} (dirty logging) not supported",
                        name, a.flags);
        p.body = a;
        return p;
    }
    case Request::set_vring_kick:
    case Request::set_vring_call:
    case Request::set_vring_err: {
        SVM_TRY(f, parse_vring_file(payload, fd_count, name));
        p.body = f;
        return p;
    }
    case Request::get_config:
    case Request::set_config: {
        SVM_CHECK(expect_fds(fd_count, 0, name));
        SVM_TRY(c, parse_config(payload, p.request == Request::set_config, name));
        p.body = std::move(c);
        return p;
    }
    }
    return fail(ExitCode::malformed, "{}: not a request this back end serves", name);
}

std::vector<std::byte> encode_header(const Header& h) {
    std::vector<std::byte> out(kHeaderSize);
    store_le32(out.data(), h.request);
    store_le32(out.data() + 4, h.flags);
    store_le32(out.data() + 8, h.size);
    return out;
}

std::vector<std::byte> encode_u64(std::uint64_t v) {
    std::vector<std::byte> out(8);
    store_le64(out.data(), v);
    return out;
}

std::vector<std::byte> encode_vring_state(const VringState& s) {
    std::vector<std::byte> out(kVringStateSize);
    store_le32(out.data(), s.index);
    store_le32(out.data() + 4, s.num);
    return out;
}

std::vector<std::byte> encode_vring_addr(const VringAddr& a) {
    std::vector<std::byte> out(kVringAddrSize);
    store_le32(out.data(), a.index);
    store_le32(out.data() + 4, a.flags);
    store_le64(out.data() + 8, a.desc_user);
    store_le64(out.data() + 16, a.used_user);
    store_le64(out.data() + 24, a.avail_user);
    store_le64(out.data() + 32, a.log_guest);
    return out;
}

std::vector<std::byte> encode_memory_table(std::span<const RegionDesc> regions) {
    std::vector<std::byte> out(kMemoryTableHeaderSize + regions.size() * kRegionSize);
    store_le32(out.data(), static_cast<std::uint32_t>(regions.size()));
    for (std::size_t i = 0; i < regions.size(); ++i) {
        std::byte* r = out.data() + kMemoryTableHeaderSize + i * kRegionSize;
        store_le64(r, regions[i].guest_address);
        store_le64(r + 8, regions[i].size);
        store_le64(r + 16, regions[i].user_address);
        store_le64(r + 24, regions[i].mmap_offset);
    }
    return out;
}

std::vector<std::byte> encode_config(std::uint32_t offset, std::uint32_t flags,
                                     std::span<const std::byte> data) {
    std::vector<std::byte> out(kConfigHeaderSize + data.size());
    store_le32(out.data(), offset);
    store_le32(out.data() + 4, static_cast<std::uint32_t>(data.size()));
    store_le32(out.data() + 8, flags);
    std::copy(data.begin(), data.end(), out.begin() + kConfigHeaderSize);
    return out;
}

Result<std::uint64_t> decode_u64(std::span<const std::byte> payload, std::string_view what) {
    SVM_CHECK(expect_size(payload, 8, what));
    return load_le64(payload.data());
}

Result<VringState> decode_vring_state(std::span<const std::byte> payload, std::string_view what) {
    SVM_CHECK(expect_size(payload, kVringStateSize, what));
    return VringState{load_le32(payload.data()), load_le32(payload.data() + 4)};
}

Result<ConfigAccess> decode_config(std::span<const std::byte> payload, std::string_view what) {
    return parse_config(payload, true, what);
}

} // namespace svmkit::vhost_user
