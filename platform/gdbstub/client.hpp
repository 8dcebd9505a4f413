// A client of QEMU's gdbstub over a unix socket: the ultravisor's hands on a
// QEMU guest (stop at a breakpoint, read and write registers and memory,
// resume). One request at a time, each with a deadline: a QEMU that hangs or
// talks nonsense is an error naming the request, never a hang.
//
// The connection switches to no-ack mode first where QEMU can
// (QStartNoAckMode: the socket is reliable), then reads the target
// description, without which QEMU's ppc gdbstub answers register requests
// with empty replies, and the feature files it includes (register numbers).
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "platform/gdbstub/registers.hpp"
#include "platform/gdbstub/rsp.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace svmkit::platform::gdb {

class Client {
  public:
    using Clock = std::chrono::steady_clock;

    // Connects to the gdbstub listening at `socket_path`, retrying until
    // `timeout` (QEMU creates the socket shortly after it starts).
    static Result<Client> connect(const std::string& socket_path,
                                  std::chrono::milliseconds timeout);

    // Sends one packet and returns the reply's payload, waiting at most
    // `timeout` (the client's default when zero).
    Result<std::string> request(std::string_view payload, std::chrono::milliseconds timeout = {});

    // The target description (qXfer:features:read:target.xml), whole.
    [[nodiscard]] const std::string& target_xml() const { return target_xml_; }
    // Register numbers by name, from the feature files it includes.
    [[nodiscard]] const RegisterMap& registers() const { return registers_; }

    // Register `number` in the numbering of the target description (ppc64:
    // GPRs 0-31, PC 64, MSR 65), raw as QEMU sends it.
    Result<std::vector<std::byte>> read_register(unsigned number);
    Result<void> write_register(unsigned number, std::span<const std::byte> bytes);
    Result<std::vector<std::byte>> read_memory(std::uint64_t address, std::size_t size);
    Result<void> write_memory(std::uint64_t address, std::span<const std::byte> bytes);
    // A breakpoint kept by QEMU itself (Z0): guest memory is not modified.
    Result<void> insert_breakpoint(std::uint64_t address);
    Result<void> remove_breakpoint(std::uint64_t address);
    // Resumes the guest until it stops (a breakpoint) or ends, waiting at
    // most `timeout`.
    Result<StopReply> resume(std::chrono::milliseconds timeout);
    Result<StopReply> step();
    // Stops a running guest (the interrupt byte; QEMU then answers with a
    // stop reply), waiting at most `timeout`.
    Result<StopReply> interrupt(std::chrono::milliseconds timeout);
    // Ends QEMU (the stub sends no reply). A running guest is interrupted
    // first: while it runs QEMU reads nothing but the interrupt byte.
    void kill();

  private:
    explicit Client(UniqueFd fd) : fd_(std::move(fd)) {}
    Result<void> send(std::string_view payload);
    Result<void> send_ack();
    Result<std::string> receive(Clock::time_point deadline, std::string_view what);
    // One file of the target description (qXfer:features:read:ANNEX), whole.
    Result<std::string> read_feature(std::string_view annex);
    Result<void> read_register_map();

    UniqueFd fd_;
    PacketReader reader_;
    bool acks_ = true;     // until QStartNoAckMode is accepted
    bool running_ = false; // a resume's stop reply has not arrived yet
    std::chrono::milliseconds default_timeout_{10000};
    std::string target_xml_;
    RegisterMap registers_;
};

} // namespace svmkit::platform::gdb
