// The GDB remote serial protocol as svmkit speaks it to QEMU's gdbstub: how
// packets are framed, and what the replies svmkit reads mean.
//
// Everything QEMU sends is untrusted (docs/ppc64le.md, "The ultravisor
// attached to QEMU"): a packet is decoded whole, with its checksum, escapes
// and run-length encoding checked and bounded, before any field of it is
// used; a reply of the wrong shape is an error naming what was expected.
//
// Framing (GDB manual, "Overview" of the remote protocol):
//   $<payload>#<two hex digits: the sum of the payload's bytes mod 256>
// In the payload '}' escapes the next byte (XOR 0x20); '*' repeats the
// previous byte (the next byte minus 29 more times). The receiver answers
// '+' (good) or '-' (resend) unless no-ack mode was negotiated.
#pragma once

#include "base/error.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::platform::gdb {

// The largest payload svmkit accepts, decoded (a register file, target
// description chunks, memory reads are far smaller).
inline constexpr std::size_t kMaxPacket = 64u << 10;

// "$" + payload with '$', '#', '}' and '*' escaped + "#" + checksum.
std::string frame_packet(std::string_view payload);

// Splits the byte stream from the stub into acknowledgements and packets.
// Invariant: buffered_ never holds a complete packet after feed() returns
// (each is moved to packets_ or rejected).
class PacketReader {
  public:
    // Takes more bytes. An error (bad checksum, a packet over kMaxPacket,
    // garbage between packets) makes the stream unusable: the caller gives up.
    Result<void> feed(std::string_view bytes);
    // The next decoded payload, in arrival order.
    std::optional<std::string> next_packet();
    // '+' and '-' seen since the last call (then reset).
    struct Acks {
        unsigned good = 0, bad = 0;
    };
    Acks take_acks();

  private:
    Result<void> take_frames();
    std::string buffered_;
    std::vector<std::string> packets_;
    std::size_t next_ = 0;
    Acks acks_;
};

// The payload of a frame body (between '$' and '#'): escapes and run-length
// encoding undone, bounded by kMaxPacket.
Result<std::string> decode_payload(std::string_view body);

// "OK", or an error naming `what` ("E nn" replies and empty "unsupported"
// replies included).
Result<void> expect_ok(std::string_view reply, std::string_view what);

// Hex digits -> bytes; exactly `size` bytes unless size is nullopt.
Result<std::vector<std::byte>> parse_hex(std::string_view hex, std::optional<std::size_t> size,
                                         std::string_view what);
std::string to_hex(std::span<const std::byte> bytes);

// Why the target stopped (a stop reply: "S05", "T05thread:01;", "W00", "X09").
struct StopReply {
    enum class Kind { signal, exited, killed } kind = Kind::signal;
    unsigned value = 0; // the signal (signal, killed) or the exit status (exited)
};
Result<StopReply> parse_stop_reply(std::string_view reply);

// A qXfer reply: 'm' (more follows) or 'l' (last) and the data.
struct XferChunk {
    bool last = false;
    std::string data;
};
Result<XferChunk> parse_xfer_chunk(std::string_view reply, std::string_view what);

// A 64-bit register's bytes as QEMU's ppc gdbstub sends them: in the
// guest's current byte order (MSR[LE]).
std::uint64_t register_value(std::span<const std::byte, 8> bytes, std::endian order);
std::vector<std::byte> register_bytes(std::uint64_t value, std::endian order);

// The byte order of the register file, told from the MSR's own bytes:
// MSR[LE] (the least significant bit) must agree with the order the bytes
// are read in; when both orders agree, the one that has MSR[SF] (64-bit
// mode, the most significant bit) set wins. Nullopt when no reading fits or
// both do equally. (At reset, before firmware runs, the MSR is zero: big.)
std::optional<std::endian> msr_byte_order(std::span<const std::byte, 8> bytes);

} // namespace svmkit::platform::gdb
