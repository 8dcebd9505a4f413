#include "platform/gdbstub/client.hpp"

#include "base/unix_socket.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace svmkit::platform::gdb {

namespace {

// The largest target description svmkit reads (QEMU's ppc64 one, with its
// included feature files, is about 30 KiB).
constexpr std::size_t kMaxTargetXml = 1u << 20;
// Memory is read and written in chunks that fit QEMU's 4096-byte packet
// buffer as hex (it answers a larger `m` with E22). The ultravisor reads
// guest RAM through the shared memory backend, not this way.
constexpr std::size_t kMemoryChunk = 2000;

std::string hex_number(std::uint64_t v) {
    return fmt::format("{:x}", v);
}

} // namespace

Result<Client> Client::connect(const std::string& socket_path, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        auto fd = svmkit::connect_unix(socket_path, "the gdbstub socket", "QEMU's gdbstub",
                                       ExitCode::qemu_failed);
        if (fd) {
            Client c(std::move(*fd));
            // Acks are pointless on a socket, but QEMU 7.2 cannot turn them
            // off (an empty reply): then they stay on.
            SVM_TRY(reply, c.request("QStartNoAckMode"));
            if (!reply.empty()) {
                SVM_CHECK(expect_ok(reply, "QStartNoAckMode"));
                c.acks_ = false;
            }
            SVM_TRY(xml, c.read_feature("target.xml"));
            c.target_xml_ = std::move(xml);
            SVM_CHECK(c.read_register_map());
            return c;
        }
        if (Clock::now() >= deadline)
            return svmkit::unexpected(fd.error());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

Result<void> Client::send(std::string_view payload) {
    const std::string framed = frame_packet(payload);
    std::size_t done = 0;
    while (done < framed.size()) {
        const ssize_t n =
            ::send(fd_.get(), framed.data() + done, framed.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(ExitCode::qemu_failed, "gdbstub: send: {}",
                        n < 0 ? std::strerror(errno) : "nothing sent");
        done += static_cast<std::size_t>(n);
    }
    return {};
}

Result<std::string> Client::receive(Clock::time_point deadline, std::string_view what) {
    for (;;) {
        if (const PacketReader::Acks a = reader_.take_acks(); a.bad != 0)
            return fail(ExitCode::qemu_failed, "gdbstub: {}: QEMU asked for a resend", what);
        if (auto packet = reader_.next_packet()) {
            // QEMU sends "W"/"X" as it exits: the socket may be closed
            // before the acknowledgement reaches it, and that is no error.
            const bool last = !packet->empty() && ((*packet)[0] == 'W' || (*packet)[0] == 'X');
            if (acks_) {
                auto acked = send_ack();
                if (!acked && !last)
                    return svmkit::unexpected(acked.error());
            }
            return std::move(*packet);
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0)
            return fail(ExitCode::timeout, "gdbstub: {}: no reply from QEMU in time", what);
        pollfd p{fd_.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (ready < 0 && errno != EINTR)
            return fail(ExitCode::io, "gdbstub: poll: {}", std::strerror(errno));
        if (ready <= 0)
            continue;
        char buf[4096];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(ExitCode::qemu_failed, "gdbstub: {}: QEMU closed the connection", what);
        SVM_CHECK(reader_.feed(std::string_view(buf, static_cast<std::size_t>(n))));
    }
}

Result<void> Client::send_ack() {
    if (::send(fd_.get(), "+", 1, MSG_NOSIGNAL) != 1)
        return fail(ExitCode::qemu_failed, "gdbstub: send: {}", std::strerror(errno));
    return {};
}

Result<std::string> Client::request(std::string_view payload, std::chrono::milliseconds timeout) {
    SVM_CHECK(send(payload));
    const auto wait = timeout.count() > 0 ? timeout : default_timeout_;
    return receive(Clock::now() + wait, payload.substr(0, payload.find_first_of(":,")));
}

Result<std::string> Client::read_feature(std::string_view annex) {
    std::string xml;
    for (;;) {
        SVM_TRY(reply, request(fmt::format("qXfer:features:read:{}:{:x},{:x}", annex, xml.size(),
                                           std::size_t{4000})));
        SVM_TRY(chunk,
                parse_xfer_chunk(reply, fmt::format("reading the target description's {}", annex)));
        xml += chunk.data;
        if (xml.size() > kMaxTargetXml)
            return fail(ExitCode::qemu_failed, "gdbstub: {} exceeds {} bytes", annex,
                        kMaxTargetXml);
        if (chunk.last)
            return xml;
        if (chunk.data.empty())
            return fail(ExitCode::qemu_failed, "gdbstub: {} stopped growing", annex);
    }
}

Result<void> Client::read_register_map() {
    SVM_TRY(includes, feature_includes(target_xml_));
    for (const std::string& file : includes) {
        SVM_TRY(xml, read_feature(file));
        SVM_CHECK(registers_.add_feature(file, xml));
    }
    return {};
}

Result<std::vector<std::byte>> Client::read_register(unsigned number) {
    SVM_TRY(reply, request(fmt::format("p{:x}", number)));
    if (reply.empty() || reply[0] == 'E')
        SVM_CHECK(expect_ok(reply, fmt::format("reading register {}", number)));
    return parse_hex(reply, std::nullopt, fmt::format("register {}", number));
}

Result<void> Client::write_register(unsigned number, std::span<const std::byte> bytes) {
    SVM_TRY(reply, request(fmt::format("P{:x}={}", number, to_hex(bytes))));
    return expect_ok(reply, fmt::format("writing register {}", number));
}

Result<std::vector<std::byte>> Client::read_memory(std::uint64_t address, std::size_t size) {
    std::vector<std::byte> out;
    out.reserve(size);
    while (out.size() < size) {
        const std::size_t n = std::min(kMemoryChunk, size - out.size());
        const std::uint64_t at = address + out.size();
        SVM_TRY(reply, request(fmt::format("m{},{:x}", hex_number(at), n)));
        if (reply.empty() || reply[0] == 'E')
            SVM_CHECK(expect_ok(reply, fmt::format("reading memory at {:#x}", at)));
        SVM_TRY(bytes, parse_hex(reply, n, fmt::format("memory at {:#x}", at)));
        out.insert(out.end(), bytes.begin(), bytes.end());
    }
    return out;
}

Result<void> Client::write_memory(std::uint64_t address, std::span<const std::byte> bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
        const std::size_t n = std::min(kMemoryChunk, bytes.size() - done);
        SVM_TRY(reply, request(fmt::format("M{},{:x}:{}", hex_number(address + done), n,
                                           to_hex(bytes.subspan(done, n)))));
        SVM_CHECK(expect_ok(reply, fmt::format("writing memory at {:#x}", address + done)));
        done += n;
    }
    return {};
}

Result<void> Client::insert_breakpoint(std::uint64_t address) {
    SVM_TRY(reply, request(fmt::format("Z0,{},4", hex_number(address))));
    return expect_ok(reply, fmt::format("a breakpoint at {:#x}", address));
}

Result<void> Client::remove_breakpoint(std::uint64_t address) {
    SVM_TRY(reply, request(fmt::format("z0,{},4", hex_number(address))));
    return expect_ok(reply, fmt::format("removing the breakpoint at {:#x}", address));
}

Result<StopReply> Client::resume(std::chrono::milliseconds timeout) {
    running_ = true;
    SVM_TRY(reply, request("c", timeout));
    running_ = false;
    return parse_stop_reply(reply);
}

Result<StopReply> Client::interrupt(std::chrono::milliseconds timeout) {
    if (::send(fd_.get(), "\x03", 1, MSG_NOSIGNAL) != 1)
        return fail(ExitCode::qemu_failed, "gdbstub: send: {}", std::strerror(errno));
    SVM_TRY(reply, receive(Clock::now() + timeout, "interrupt"));
    running_ = false;
    return parse_stop_reply(reply);
}

Result<StopReply> Client::step() {
    SVM_TRY(reply, request("s"));
    return parse_stop_reply(reply);
}

void Client::kill() {
    if (running_)
        (void)interrupt(std::chrono::milliseconds(2000));
    (void)send("k");
    fd_ = UniqueFd();
}

} // namespace svmkit::platform::gdb
