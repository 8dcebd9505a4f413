// The GDB remote protocol codec (platform/gdbstub/rsp.hpp): framing round
// trips, and every malformed thing QEMU could send refused with its reason.
#include "platform/gdbstub/rsp.hpp"

#include "test_support.hpp"

#include <doctest/doctest.h>

using namespace svmkit;
using namespace svmkit::platform::gdb;

namespace {

std::vector<std::string> packets_of(std::string_view stream) {
    PacketReader r;
    auto fed = r.feed(stream);
    REQUIRE_MESSAGE(fed.has_value(), fed.error().message);
    std::vector<std::string> out;
    while (auto p = r.next_packet())
        out.push_back(*p);
    return out;
}

std::string feed_error(std::string_view stream) {
    PacketReader r;
    auto fed = r.feed(stream);
    REQUIRE_FALSE(fed.has_value());
    CHECK(fed.error().code == ExitCode::qemu_failed);
    return fed.error().message;
}

std::array<std::byte, 8> bytes8(std::initializer_list<unsigned> v) {
    std::array<std::byte, 8> out{};
    std::size_t i = 0;
    for (unsigned b : v)
        out.at(i++) = static_cast<std::byte>(b);
    return out;
}

} // namespace

TEST_CASE("gdb rsp: framing: checksum, escapes, and a round trip through the reader") {
    CHECK(frame_packet("OK") == "$OK#9a");
    CHECK(frame_packet("") == "$#00");
    // '$', '#', '}' and '*' are escaped as '}' + (byte ^ 0x20).
    const std::string body = "a}\x04"
                             "b}\x03"
                             "c}]d}\x0a";
    unsigned sum = 0;
    for (char c : body)
        sum += static_cast<unsigned char>(c);
    CHECK(frame_packet("a$b#c}d*") == "$" + body + "#" + fmt::format("{:02x}", sum & 0xff));
    const std::string awkward = std::string("x$#}*\0y", 7) + std::string(300, 'z');
    CHECK(packets_of(frame_packet(awkward)) == std::vector<std::string>{awkward});
    // Acks between packets are counted, not returned.
    PacketReader r;
    REQUIRE(r.feed("+" + frame_packet("T05") + "+-").has_value());
    CHECK(r.next_packet() == "T05");
    CHECK_FALSE(r.next_packet().has_value());
    const auto acks = r.take_acks();
    CHECK(acks.good == 2);
    CHECK(acks.bad == 1);
}

TEST_CASE("gdb rsp: a packet split anywhere arrives whole, once") {
    const std::string stream = frame_packet("qXfer-data") + frame_packet("OK");
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        PacketReader r;
        REQUIRE(r.feed(stream.substr(0, cut)).has_value());
        REQUIRE(r.feed(stream.substr(cut)).has_value());
        std::vector<std::string> got;
        while (auto p = r.next_packet())
            got.push_back(*p);
        CHECK(got == std::vector<std::string>{"qXfer-data", "OK"});
    }
}

TEST_CASE("gdb rsp: run-length encoding is expanded within bounds") {
    // "0* " is '0' then ' ' - 29 = 3 more: "0000".
    CHECK(decode_payload("0* ").value() == "0000");
    CHECK(decode_payload("ab*\"c").value() == "abbbbbbc"); // '"' = 34: 5 more
    CHECK_FALSE(decode_payload("* ").has_value());         // nothing to repeat
    CHECK_FALSE(decode_payload("a*").has_value());         // no count
    CHECK_FALSE(decode_payload("a*\x1f").has_value());     // count below 3
    CHECK_FALSE(decode_payload("a}").has_value());         // escape at the end
    // Expansion beyond kMaxPacket is refused, however short the input.
    std::string bomb;
    for (int i = 0; i < 1000; ++i)
        bomb += "a*~"; // 1 + 97 bytes each
    auto r = decode_payload(bomb);
    REQUIRE_FALSE(r.has_value());
    CHECK(test::contains(r.error().message, "larger than"));
}

TEST_CASE("gdb rsp: malformed streams are refused with their reason") {
    CHECK(test::contains(feed_error("$OK#00"), "checksum is wrong"));
    CHECK(test::contains(feed_error("$OK#zz"), "checksum is wrong"));
    CHECK(test::contains(feed_error("hello"), "unexpected byte 0x68"));
    CHECK(test::contains(feed_error("$a*"
                                    "\x05"
                                    "#"
                                    "00"),
                         "checksum")); // checked before decoding
    // A frame that never ends cannot grow without bound.
    PacketReader r;
    auto fed = r.feed("$" + std::string(kMaxPacket, 'a'));
    REQUIRE(fed.has_value());
    fed = r.feed(std::string(kMaxPacket + 32, 'a'));
    REQUIRE_FALSE(fed.has_value());
    CHECK(test::contains(fed.error().message, "larger than"));
}

TEST_CASE("gdb rsp: replies: OK, errors, hex, stop replies, qXfer chunks") {
    CHECK(expect_ok("OK", "x").has_value());
    test::check_error(expect_ok("E14", "writing register 65"), ExitCode::qemu_failed,
                      "writing register 65: error 14");
    test::check_error(expect_ok("", "Z0"), ExitCode::qemu_failed, "Z0: not supported");
    test::check_error(expect_ok("OKAY", "x"), ExitCode::qemu_failed, "unexpected reply 'OKAY'");

    CHECK(parse_hex("00ff10", 3, "m").value() ==
          std::vector<std::byte>{std::byte{0}, std::byte{0xff}, std::byte{0x10}});
    test::check_error(parse_hex("00ff1", std::nullopt, "m"), ExitCode::qemu_failed, "hex bytes");
    test::check_error(parse_hex("00ff", 3, "m"), ExitCode::qemu_failed, "expected 3 hex bytes");
    test::check_error(parse_hex("0g", 1, "m"), ExitCode::qemu_failed, "not hex");
    CHECK(to_hex(parse_hex("0123456789abcdef", 8, "r").value()) == "0123456789abcdef");

    CHECK(parse_stop_reply("S05").value().kind == StopReply::Kind::signal);
    CHECK(parse_stop_reply("T05thread:p01.01;").value().value == 5);
    CHECK(parse_stop_reply("W00").value().kind == StopReply::Kind::exited);
    CHECK(parse_stop_reply("X09;process:1").value().kind == StopReply::Kind::killed);
    for (const char* bad : {"", "S", "S5", "S055", "Q05", "Wzz", "OK", "E01"})
        test::check_error(parse_stop_reply(bad), ExitCode::qemu_failed, "expected a stop reply");

    CHECK(parse_xfer_chunk("l<xml/>", "t").value().last);
    CHECK(parse_xfer_chunk("mabc", "t").value().data == "abc");
    test::check_error(parse_xfer_chunk("E00", "t"), ExitCode::qemu_failed, "t: error 00");
    test::check_error(parse_xfer_chunk("", "t"), ExitCode::qemu_failed, "not supported");
    test::check_error(parse_xfer_chunk("OK", "t"), ExitCode::qemu_failed, "unexpected reply");
}

TEST_CASE("gdb rsp: registers in the guest's byte order, told from the MSR") {
    const auto be = bytes8({0x80, 0, 0, 0, 0, 0, 0x10, 0x00}); // SF, LE clear, big-endian
    const auto le = bytes8({0x33, 0x10, 0, 0, 0, 0, 0, 0x80}); // SF, LE set, little-endian
    CHECK(msr_byte_order(be) == std::endian::big);
    CHECK(msr_byte_order(le) == std::endian::little);
    CHECK(register_value(be, std::endian::big) == 0x8000000000001000ull);
    CHECK(register_value(le, std::endian::little) == 0x8000000000001033ull);
    CHECK(msr_byte_order(bytes8({0, 0, 0, 0, 0, 0, 0, 0})) == std::endian::big); // at reset
    CHECK(msr_byte_order(bytes8({0x01, 0, 0, 0, 0, 0, 0, 0x80})) == std::endian::little);
    CHECK_FALSE(msr_byte_order(bytes8({0, 0, 0, 0, 0, 0, 0, 0x01})).has_value());    // neither
    CHECK_FALSE(msr_byte_order(bytes8({0x81, 0, 0, 0, 0, 0, 0, 0x80})).has_value()); // either
    for (std::endian order : {std::endian::big, std::endian::little}) {
        const auto bytes = register_bytes(0x0123456789abcdefull, order);
        CHECK(register_value(std::span<const std::byte, 8>(bytes.data(), 8), order) ==
              0x0123456789abcdefull);
    }
}
