// The vhost-user codec: every rule parse_request enforces, one message at a
// time, plus encode/decode round trips. (The fuzz target feeds the same
// parser arbitrary bytes.)
#include "platform/vhost_user/protocol.hpp"
#include "test_support.hpp"

#include <doctest/doctest.h>

using namespace svmkit;
using namespace svmkit::test;
using namespace svmkit::vhost_user;

namespace {

Header request(Request r, std::size_t size, std::uint32_t flags = kVersion) {
    return Header{static_cast<std::uint32_t>(r), flags, static_cast<std::uint32_t>(size)};
}

Result<ParsedRequest> parse(Request r, const std::vector<std::byte>& payload, std::size_t fds = 0,
                            std::uint32_t flags = kVersion) {
    return parse_request(request(r, payload.size(), flags), payload, fds);
}

std::vector<std::byte> table(std::vector<RegionDesc> regions) {
    return encode_memory_table(regions);
}

} // namespace

TEST_CASE("vhost-user protocol: little-endian codec round trips") {
    std::byte b[8];
    store_le64(b, 0x0102030405060708ull);
    CHECK(b[0] == std::byte{0x08});
    CHECK(b[7] == std::byte{0x01});
    CHECK(load_le64(b) == 0x0102030405060708ull);
    CHECK(load_le32(b) == 0x05060708u);
    CHECK(load_le16(b + 6) == 0x0102);
    auto h = encode_header({5, kVersion | kFlagNeedReply, 40});
    REQUIRE(h.size() == kHeaderSize);
    CHECK(load_le32(h.data()) == 5);
    CHECK(load_le32(h.data() + 4) == 9);
    CHECK(load_le32(h.data() + 8) == 40);

    VringAddr a{1, 0, 0x1000, 0x2000, 0x3000, 0};
    auto p = parse(Request::set_vring_addr, encode_vring_addr(a));
    REQUIRE(p.has_value());
    const auto& got = std::get<VringAddr>(p->body);
    CHECK(got.index == 1);
    CHECK(got.desc_user == 0x1000);
    CHECK(got.used_user == 0x2000);
    CHECK(got.avail_user == 0x3000);

    auto s = decode_vring_state(encode_vring_state({3, 77}), "x");
    REQUIRE(s.has_value());
    CHECK(s->index == 3);
    CHECK(s->num == 77);
    std::vector<std::byte> cfg{std::byte{1}, std::byte{2}};
    auto c = decode_config(encode_config(8, 0, cfg), "x");
    REQUIRE(c.has_value());
    CHECK(c->offset == 8);
    CHECK(c->data == cfg);
}

TEST_CASE("vhost-user protocol: headers") {
    check_error(check_header({1, 0, 0}, false), ExitCode::malformed, "protocol version 0");
    check_error(check_header({1, 2, 0}, false), ExitCode::malformed, "protocol version 2");
    check_error(check_header({1, kVersion | 0x10, 0}, false), ExitCode::malformed,
                "undefined flag bits 0x11");
    check_error(check_header({1, kVersion | kFlagReply, 0}, false), ExitCode::malformed,
                "request has the REPLY flag");
    check_error(check_header({1, kVersion, 8}, true), ExitCode::malformed,
                "reply lacks the REPLY flag");
    check_error(check_header({1, kVersion, kMaxPayloadSize + 1}, false), ExitCode::malformed,
                "more than the maximum");
    CHECK(check_header({1, kVersion | kFlagNeedReply, kMaxPayloadSize}, false).has_value());
    // The header's size must match the payload handed in.
    std::vector<std::byte> eight(8);
    check_error(parse_request(request(Request::set_features, 4), eight, 0), ExitCode::malformed,
                "header says 4 payload bytes, got 8");
    check_error(parse(static_cast<Request>(99), {}), ExitCode::malformed,
                "request 99: not a request this back end serves");
    check_error(parse(static_cast<Request>(6), {}), ExitCode::malformed,
                "request 6: not a request"); // SET_LOG_BASE: not served
    CHECK(request_name(Request::set_mem_table) == "SET_MEM_TABLE");
}

TEST_CASE("vhost-user protocol: payload sizes and fd counts per request") {
    CHECK(parse(Request::get_features, {}).has_value());
    check_error(parse(Request::get_features, encode_u64(0)), ExitCode::malformed,
                "GET_FEATURES: payload is 8 bytes, expected 0");
    check_error(parse(Request::set_owner, {}, 1), ExitCode::malformed,
                "SET_OWNER: came with 1 file descriptors, expected 0");
    auto f = parse(Request::set_features, encode_u64(0x100000000ull));
    REQUIRE(f.has_value());
    CHECK(std::get<std::uint64_t>(f->body) == 0x100000000ull);
    check_error(parse(Request::set_features, std::vector<std::byte>(4)), ExitCode::malformed,
                "SET_FEATURES: payload is 4 bytes, expected 8");
    check_error(parse(Request::set_protocol_features, std::vector<std::byte>(9)),
                ExitCode::malformed, "payload is 9 bytes");
    check_error(parse(Request::set_vring_addr, std::vector<std::byte>(39)), ExitCode::malformed,
                "SET_VRING_ADDR: payload is 39 bytes, expected 40");
    auto need = parse(Request::set_owner, {}, 0, kVersion | kFlagNeedReply);
    REQUIRE(need.has_value());
    CHECK(need->need_reply);
}

TEST_CASE("vhost-user protocol: ring numbers") {
    CHECK(parse(Request::set_vring_num, encode_vring_state({0, 256})).has_value());
    CHECK(parse(Request::set_vring_num, encode_vring_state({255, 32768})).has_value());
    check_error(parse(Request::set_vring_num, encode_vring_state({256, 16})), ExitCode::malformed,
                "ring index 256 is out of range");
    for (std::uint32_t bad : {0u, 3u, 65536u, 0xffffffffu})
        check_error(parse(Request::set_vring_num, encode_vring_state({0, bad})),
                    ExitCode::malformed, "is not a power of two");
    CHECK(parse(Request::set_vring_base, encode_vring_state({0, 0xffff})).has_value());
    check_error(parse(Request::set_vring_base, encode_vring_state({0, 0x10000})),
                ExitCode::malformed, "does not fit 16 bits");
    check_error(parse(Request::set_vring_enable, encode_vring_state({0, 2})), ExitCode::malformed,
                "neither 0 nor 1");
    VringAddr logged{0, 1, 0, 0, 0, 0};
    check_error(parse(Request::set_vring_addr, encode_vring_addr(logged)), ExitCode::malformed,
                "dirty logging");
}

TEST_CASE("vhost-user protocol: kick, call and err fds") {
    auto k = parse(Request::set_vring_kick, encode_u64(3), 1);
    REQUIRE(k.has_value());
    CHECK(std::get<VringFile>(k->body).index == 3);
    CHECK(std::get<VringFile>(k->body).has_fd);
    auto none = parse(Request::set_vring_call, encode_u64(kVringNoFdFlag | 2), 0);
    REQUIRE(none.has_value());
    CHECK_FALSE(std::get<VringFile>(none->body).has_fd);
    check_error(parse(Request::set_vring_kick, encode_u64(0), 0), ExitCode::malformed,
                "SET_VRING_KICK: came with 0 file descriptors, expected 1");
    check_error(parse(Request::set_vring_err, encode_u64(kVringNoFdFlag), 1), ExitCode::malformed,
                "came with 1 file descriptors, expected 0");
    check_error(parse(Request::set_vring_call, encode_u64(0x200), 1), ExitCode::malformed,
                "undefined bits in 0x200");
}

TEST_CASE("vhost-user protocol: memory tables") {
    RegionDesc r{0, 0x100000, 0x7f0000000000, 0};
    auto ok = parse(Request::set_mem_table, table({r}), 1);
    REQUIRE(ok.has_value());
    CHECK(std::get<std::vector<RegionDesc>>(ok->body).size() == 1);
    std::vector<RegionDesc> eight;
    for (std::uint64_t i = 0; i < 8; ++i)
        eight.push_back({i << 20, 1 << 20, (i << 20) + 0x10000000, i << 20});
    CHECK(parse(Request::set_mem_table, table(eight), 8).has_value());

    check_error(parse(Request::set_mem_table, table({r}), 0), ExitCode::malformed,
                "came with 0 file descriptors, expected 1");
    check_error(parse(Request::set_mem_table, table({r, {0x200000, 0x1000, 0, 0}}), 1),
                ExitCode::malformed, "came with 1 file descriptors, expected 2");
    // Region count: 0, or more than 8 (the count is checked before the size).
    auto zero = table({r});
    store_le32(zero.data(), 0);
    check_error(parse(Request::set_mem_table, zero, 1), ExitCode::malformed, "0 regions");
    auto nine = table(eight);
    store_le32(nine.data(), 9);
    check_error(parse(Request::set_mem_table, nine, 8), ExitCode::malformed,
                "9 regions, expected 1 to 8");
    // Count and size disagree.
    auto two = table({r});
    store_le32(two.data(), 2);
    check_error(parse(Request::set_mem_table, two, 2), ExitCode::malformed,
                "payload is 40 bytes, expected 72");
    check_error(parse(Request::set_mem_table, std::vector<std::byte>(4), 0), ExitCode::malformed,
                "has no region count");
    // Sizes and overflow.
    check_error(parse(Request::set_mem_table, table({{0, 0, 0, 0}}), 1), ExitCode::malformed,
                "region 0 is empty");
    check_error(parse(Request::set_mem_table, table({{~0ull - 0xfff, 0x2000, 0, 0}}), 1),
                ExitCode::malformed, "guest range 0xfffffffffffff000+0x2000 overflows");
    check_error(parse(Request::set_mem_table, table({{0, 0x2000, ~0ull - 0xfff, 0}}), 1),
                ExitCode::malformed, "user range");
    check_error(parse(Request::set_mem_table, table({{0, 0x2000, 0, ~0ull - 0xfff}}), 1),
                ExitCode::malformed, "file range");
    check_error(parse(Request::set_mem_table, table({{0, 0x2000, 0, 0x7fffffffffffffffull}}), 1),
                ExitCode::malformed, "exceeds the largest file offset");
    // Overlaps.
    check_error(parse(Request::set_mem_table,
                      table({{0, 0x2000, 0x10000, 0}, {0x1000, 0x1000, 0x20000, 0}}), 2),
                ExitCode::malformed, "regions 0 and 1 overlap in guest memory");
    check_error(parse(Request::set_mem_table,
                      table({{0, 0x2000, 0x10000, 0}, {0x4000, 0x1000, 0x11000, 0}}), 2),
                ExitCode::malformed, "regions 0 and 1 overlap in user addresses");
    // Adjacent regions do not overlap.
    CHECK(parse(Request::set_mem_table,
                table({{0, 0x2000, 0x10000, 0}, {0x2000, 0x1000, 0x12000, 0x2000}}), 2)
              .has_value());
}

TEST_CASE("vhost-user protocol: config accesses") {
    auto get = parse(Request::get_config, encode_config(0, 0, std::vector<std::byte>(60)));
    REQUIRE(get.has_value());
    CHECK(std::get<ConfigAccess>(get->body).data.size() == 60);
    CHECK(parse(Request::get_config, encode_config(255, 0, std::vector<std::byte>(1))).has_value());
    check_error(parse(Request::get_config, encode_config(250, 0, std::vector<std::byte>(10))),
                ExitCode::malformed, "config range 250+10 is outside");
    check_error(parse(Request::get_config, encode_config(0, 0, {})), ExitCode::malformed,
                "config range 0+0");
    check_error(parse(Request::get_config, encode_config(0, 2, std::vector<std::byte>(4))),
                ExitCode::malformed, "undefined config flags");
    auto lying = encode_config(0, 0, std::vector<std::byte>(4));
    store_le32(lying.data() + 4, 0xfffffff0u); // size field far beyond the payload
    check_error(parse(Request::set_config, lying), ExitCode::malformed,
                "payload is 16 bytes, expected 4294967292");
    check_error(parse(Request::set_config, std::vector<std::byte>(11)), ExitCode::malformed,
                "shorter than its header");
    check_error(parse(Request::get_config, encode_config(0, 0, std::vector<std::byte>(4)), 1),
                ExitCode::malformed, "file descriptors");
    auto set =
        parse(Request::set_config, encode_config(4, 1, std::vector<std::byte>(2, std::byte{7})));
    REQUIRE(set.has_value());
    CHECK(std::get<ConfigAccess>(set->body).data == std::vector<std::byte>(2, std::byte{7}));
}
