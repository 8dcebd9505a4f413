#include "platform/gdbstub/rsp.hpp"

#include <algorithm>

namespace svmkit::platform::gdb {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

std::optional<unsigned> hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return static_cast<unsigned>(c - '0');
    if (c >= 'a' && c <= 'f')
        return static_cast<unsigned>(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return static_cast<unsigned>(c - 'A' + 10);
    return std::nullopt;
}

std::optional<unsigned> hex_byte(char hi, char lo) {
    const auto h = hex_digit(hi), l = hex_digit(lo);
    if (!h || !l)
        return std::nullopt;
    return *h << 4 | *l;
}

// A short, printable excerpt of a reply for messages (it is QEMU's text).
std::string excerpt(std::string_view reply) {
    std::string out;
    for (char c : reply.substr(0, 40))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (reply.size() > 40)
        out += "...";
    return out;
}

bool needs_escape(char c) {
    return c == '$' || c == '#' || c == '}' || c == '*';
}

unsigned checksum(std::string_view bytes) {
    unsigned sum = 0;
    for (char c : bytes)
        sum += static_cast<unsigned char>(c);
    return sum & 0xff;
}

} // namespace

std::string frame_packet(std::string_view payload) {
    std::string body;
    body.reserve(payload.size() + 8);
    for (char c : payload) {
        if (needs_escape(c)) {
            body += '}';
            body += static_cast<char>(c ^ 0x20);
        } else {
            body += c;
        }
    }
    const unsigned sum = checksum(body);
    std::string framed = "$" + body + "#";
    framed += kHexDigits[sum >> 4];
    framed += kHexDigits[sum & 0xf];
    return framed;
}

Result<std::string> decode_payload(std::string_view body) {
    std::string out;
    for (std::size_t i = 0; i < body.size(); ++i) {
        const char c = body[i];
        if (c == '}') {
            if (++i == body.size())
                return fail(ExitCode::qemu_failed, "gdbstub: a packet ends in an escape");
            out += static_cast<char>(body[i] ^ 0x20);
        } else if (c == '*') {
            // Run-length: the previous byte, (next byte - 29) more times.
            if (out.empty() || ++i == body.size())
                return fail(ExitCode::qemu_failed, "gdbstub: a packet has a stray repeat mark");
            const int count = static_cast<unsigned char>(body[i]) - 29;
            if (count < 3 || count > 97) // GDB's encoder uses 3..97 ('#' and '$' excluded)
                return fail(ExitCode::qemu_failed, "gdbstub: a packet has a bad repeat count");
            out.append(static_cast<std::size_t>(count), out.back());
        } else {
            out += c;
        }
        if (out.size() > kMaxPacket)
            return fail(ExitCode::qemu_failed, "gdbstub: a packet is larger than {} bytes",
                        kMaxPacket);
    }
    return out;
}

Result<void> PacketReader::feed(std::string_view bytes) {
    if (buffered_.size() + bytes.size() > 2 * kMaxPacket + 16)
        return fail(ExitCode::qemu_failed, "gdbstub: a packet is larger than {} bytes", kMaxPacket);
    buffered_.append(bytes);
    return take_frames();
}

Result<void> PacketReader::take_frames() {
    std::size_t at = 0;
    while (at < buffered_.size()) {
        const char c = buffered_[at];
        if (c == '+' || c == '-') {
            ++(c == '+' ? acks_.good : acks_.bad);
            ++at;
            continue;
        }
        if (c != '$')
            return fail(ExitCode::qemu_failed, "gdbstub: unexpected byte {:#04x} between packets",
                        static_cast<unsigned char>(c));
        const std::size_t hash = buffered_.find('#', at + 1);
        if (hash == std::string::npos || hash + 2 >= buffered_.size())
            break; // incomplete: wait for more
        const std::string_view body(buffered_.data() + at + 1, hash - at - 1);
        const auto sum = hex_byte(buffered_[hash + 1], buffered_[hash + 2]);
        if (!sum || *sum != checksum(body))
            return fail(ExitCode::qemu_failed, "gdbstub: a packet's checksum is wrong");
        SVM_TRY(payload, decode_payload(body));
        packets_.push_back(std::move(payload));
        at = hash + 3;
    }
    buffered_.erase(0, at);
    if (buffered_.size() > 2 * kMaxPacket + 4)
        return fail(ExitCode::qemu_failed, "gdbstub: a packet is larger than {} bytes", kMaxPacket);
    return {};
}

std::optional<std::string> PacketReader::next_packet() {
    if (next_ == packets_.size()) {
        packets_.clear();
        next_ = 0;
        return std::nullopt;
    }
    return std::move(packets_[next_++]);
}

PacketReader::Acks PacketReader::take_acks() {
    const Acks a = acks_;
    acks_ = {};
    return a;
}

Result<void> expect_ok(std::string_view reply, std::string_view what) {
    if (reply == "OK")
        return {};
    if (reply.empty())
        return fail(ExitCode::qemu_failed, "gdbstub: {}: not supported by this QEMU", what);
    if (reply.size() == 3 && reply[0] == 'E' && hex_byte(reply[1], reply[2]))
        return fail(ExitCode::qemu_failed, "gdbstub: {}: error {}", what, reply.substr(1));
    return fail(ExitCode::qemu_failed, "gdbstub: {}: unexpected reply '{}'", what, excerpt(reply));
}

Result<std::vector<std::byte>> parse_hex(std::string_view hex, std::optional<std::size_t> size,
                                         std::string_view what) {
    if (hex.size() % 2 != 0 || (size && hex.size() != 2 * *size))
        return fail(ExitCode::qemu_failed, "gdbstub: {}: expected {} hex bytes, got '{}'", what,
                    size ? fmt::to_string(*size) : "whole", excerpt(hex));
    std::vector<std::byte> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto b = hex_byte(hex[2 * i], hex[2 * i + 1]);
        if (!b)
            return fail(ExitCode::qemu_failed, "gdbstub: {}: not hex: '{}'", what, excerpt(hex));
        out[i] = static_cast<std::byte>(*b);
    }
    return out;
}

std::string to_hex(std::span<const std::byte> bytes) {
    std::string out;
    out.reserve(2 * bytes.size());
    for (std::byte b : bytes) {
        out += kHexDigits[std::to_integer<unsigned>(b) >> 4];
        out += kHexDigits[std::to_integer<unsigned>(b) & 0xf];
    }
    return out;
}

Result<StopReply> parse_stop_reply(std::string_view reply) {
    // S/T: a signal; W: exited with a status; X: killed by a signal. All
    // carry two hex digits first; T's "n:r;" pairs after them are not needed.
    if (reply.size() >= 3 &&
        (reply[0] == 'S' || reply[0] == 'T' || reply[0] == 'W' || reply[0] == 'X')) {
        const auto v = hex_byte(reply[1], reply[2]);
        const bool tail_ok = reply[0] == 'T' || reply.size() == 3 ||
                             ((reply[0] == 'W' || reply[0] == 'X') && reply[3] == ';');
        if (v && tail_ok) {
            StopReply s;
            s.value = *v;
            s.kind = reply[0] == 'W'   ? StopReply::Kind::exited
                     : reply[0] == 'X' ? StopReply::Kind::killed
                                       : StopReply::Kind::signal;
            return s;
        }
    }
    return fail(ExitCode::qemu_failed, "gdbstub: expected a stop reply, got '{}'", excerpt(reply));
}

Result<XferChunk> parse_xfer_chunk(std::string_view reply, std::string_view what) {
    if (reply.empty() || (reply[0] != 'm' && reply[0] != 'l')) {
        SVM_CHECK(expect_ok(reply, what)); // names an error reply precisely
        return fail(ExitCode::qemu_failed, "gdbstub: {}: unexpected reply 'OK'", what);
    }
    return XferChunk{reply[0] == 'l', std::string(reply.substr(1))};
}

std::uint64_t register_value(std::span<const std::byte, 8> bytes, std::endian order) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        const std::size_t at = order == std::endian::little ? 7 - i : i;
        v = v << 8 | std::to_integer<std::uint64_t>(bytes[at]);
    }
    return v;
}

std::vector<std::byte> register_bytes(std::uint64_t value, std::endian order) {
    std::vector<std::byte> out(8);
    for (std::size_t i = 0; i < 8; ++i) {
        const std::size_t at = order == std::endian::little ? i : 7 - i;
        out[at] = static_cast<std::byte>(value >> (8 * i));
    }
    return out;
}

std::optional<std::endian> msr_byte_order(std::span<const std::byte, 8> bytes) {
    constexpr std::uint64_t kSf = 1ull << 63, kLe = 1;
    const std::uint64_t as_big = register_value(bytes, std::endian::big);
    const std::uint64_t as_little = register_value(bytes, std::endian::little);
    // Read big-endian, MSR[LE] must be clear; read little-endian, set.
    const bool big = (as_big & kLe) == 0;
    const bool little = (as_little & kLe) != 0;
    if (big != little)
        return big ? std::endian::big : std::endian::little;
    // Both readings fit: the one in 64-bit mode (MSR[SF]) wins, if only one is.
    const bool big_sf = (as_big & kSf) != 0, little_sf = (as_little & kSf) != 0;
    if (!big || big_sf == little_sf)
        return std::nullopt;
    return big_sf ? std::endian::big : std::endian::little;
}

} // namespace svmkit::platform::gdb
