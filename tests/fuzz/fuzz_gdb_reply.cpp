// Fuzz target: what QEMU's gdbstub sends the attached ultravisor
// (platform/gdbstub/rsp.hpp). The input is the byte stream, fed to the packet
// reader in pieces whose sizes the first byte chooses; every packet that
// comes out is then read by each reply parser, as the client would read
// whichever reply it waits for.
//
// Oracle, beyond no crash / no UB / no leak: no packet exceeds kMaxPacket; a
// packet framed by frame_packet() decodes back to itself; a parsed register
// round-trips through register_bytes(); hex that parses re-encodes to the
// same bytes, lowercase. Each packet is also read as a target description
// (its includes) and as a feature file (its registers), as the client reads
// qXfer replies: a name the map holds resolves to one number.
#include "platform/gdbstub/registers.hpp"
#include "platform/gdbstub/rsp.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace svmkit::platform::gdb;

namespace {

void check(bool ok) {
    if (!ok)
        std::abort();
}

void parse_every_way(const std::string& packet) {
    check(packet.size() <= kMaxPacket);
    (void)expect_ok(packet, "fuzz");
    (void)parse_stop_reply(packet);
    (void)parse_xfer_chunk(packet, "fuzz");
    if (auto hex = parse_hex(packet, std::nullopt, "fuzz")) {
        std::string lower;
        for (char c : packet)
            lower += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
        check(to_hex(*hex) == lower);
        if (hex->size() == 8) {
            const std::span<const std::byte, 8> reg(hex->data(), 8);
            if (auto order = msr_byte_order(reg))
                check(register_bytes(register_value(reg, *order), *order) == *hex);
        }
    }
    (void)feature_includes(packet);
    RegisterMap map;
    if (map.add_feature("fuzz.xml", packet)) {
        if (auto n = map.number("r3"))
            check(map.require("r3").value_or(~0u) == *n);
    }
    // Framing what came out and reading it back gives it again.
    PacketReader again;
    check(again.feed(frame_packet(packet)).has_value());
    check(again.next_packet() == packet);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::size_t piece = 1 + data[0] % 64;
    const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
    PacketReader reader;
    for (std::size_t at = 0; at < stream.size(); at += piece) {
        if (!reader.feed(stream.substr(at, piece)))
            break; // the client gives up on the connection here too
        while (auto packet = reader.next_packet())
            parse_every_way(*packet);
    }
    (void)reader.take_acks();
    return 0;
}
