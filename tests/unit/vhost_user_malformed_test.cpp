// Malformed vhost-user messages sent to the svmkit-vhost-blk process: each is
// refused (an ack of 1 when the front end asked for one, else the connection
// is closed), the refusal is logged with its reason, no descriptor leaks, and
// the process keeps serving well-formed front ends.
//
// Also, in process: a Session maps each memory table and unmaps the old one.
#include "platform/vhost_user/session.hpp"
#include "vhost_user_test_driver.hpp"

#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <sys/socket.h>

using namespace svmkit;
using namespace svmkit::test;
using namespace svmkit::test::vhost;

namespace {

std::size_t open_fds(pid_t pid) {
    std::size_t n = 0;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
        (void)e, ++n;
    return n;
}

std::vector<std::byte> message(std::uint32_t request, std::uint32_t flags,
                               const std::vector<std::byte>& payload,
                               std::optional<std::uint32_t> size = std::nullopt) {
    auto out =
        encode_header({request, flags, size.value_or(static_cast<std::uint32_t>(payload.size()))});
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

std::uint32_t req(Request r) {
    return static_cast<std::uint32_t>(r);
}

// sendmsg without Channel's limit of kMaxFds descriptors.
void send_with_fds(int sock, const std::vector<std::byte>& bytes, const std::vector<int>& fds) {
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    iovec iov{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    REQUIRE(::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

struct Malformed {
    const char* what;
    std::vector<std::byte> bytes;
    std::vector<int> fds;
    const char* logged;
};

// Sends `m` on a fresh connection; with `ack`, after negotiating REPLY_ACK and
// with NEED_REPLY set, expects an ack of 1; otherwise expects the back end to
// close the connection.
void expect_refused(BackendUnderTest& b, Malformed m, bool ack) {
    const std::string what = m.what;
    const std::string logged = m.logged;
    CAPTURE(what);
    CAPTURE(ack);
    Frontend f = b.connect();
    if (ack) {
        REQUIRE(f.set_owner().has_value());
        REQUIRE(f.negotiate(kVirtioVersion1, kVirtioVersion1).has_value());
        REQUIRE(f.negotiated().has_protocol(kProtocolReplyAck));
        std::uint32_t flags = load_le32(m.bytes.data() + 4);
        store_le32(m.bytes.data() + 4, flags | kFlagNeedReply);
    }
    send_with_fds(f.channel().fd(), m.bytes, m.fds);
    auto reply = f.channel().receive(true, std::chrono::milliseconds(5000));
    if (ack) {
        REQUIRE_MESSAGE(reply.has_value(), error_of(reply));
        REQUIRE(reply->has_value());
        CHECK((*reply)->header.request == load_le32(m.bytes.data()));
        CHECK(load_le64((*reply)->payload.data()) == 1);
        CHECK(f.get_features().has_value()); // still connected
    } else {
        // Closed: end of stream (or a reset) instead of a reply.
        CHECK((!reply.has_value() || !reply->has_value()));
    }
    CHECK_MESSAGE(b.backend_log().find(m.logged) != std::string::npos, "log lacks '"
                                                                           << m.logged << "':\n"
                                                                           << b.backend_log());
    CHECK(b.alive());
}

} // namespace

TEST_CASE("vhost-blk: malformed messages are refused and the back end keeps serving") {
    BackendUnderTest b;
    b.start_ours();
    GuestRam ram;
    UniqueFd event = make_eventfd();
    UniqueFd small(::memfd_create("vhost-small", MFD_CLOEXEC));
    REQUIRE(::ftruncate(small.get(), 4096) == 0);
    const int ram_fd = ram.fd();
    const std::uint64_t user = ram.user_address(0);

    const std::vector<Malformed> cases = {
        {"bad payload size",
         message(req(Request::set_features), kVersion, std::vector<std::byte>(4)),
         {},
         "SET_FEATURES: payload is 4 bytes, expected 8"},
        {"ring size not a power of two",
         message(req(Request::set_vring_num), kVersion, encode_vring_state({0, 100})),
         {},
         "ring size 100 is not a power of two"},
        {"ring index out of range",
         message(req(Request::set_vring_num), kVersion, encode_vring_state({5, 16})),
         {},
         "ring index 5 out of range (1 rings)"},
        {"too many regions",
         [&] {
             std::vector<RegionDesc> r(8, RegionDesc{0, 0x1000, user, 0});
             for (std::size_t i = 0; i < r.size(); ++i) {
                 r[i].guest_address = i * 0x1000;
                 r[i].user_address = user + i * 0x1000;
             }
             auto p = encode_memory_table(r);
             store_le32(p.data(), 9);
             return message(req(Request::set_mem_table), kVersion, p);
         }(),
         {ram_fd, ram_fd, ram_fd, ram_fd, ram_fd, ram_fd, ram_fd, ram_fd},
         "9 regions"},
        {"overflowing region",
         message(req(Request::set_mem_table), kVersion,
                 encode_memory_table(std::vector<RegionDesc>{{~0ull - 0xfff, 0x2000, user, 0}})),
         {ram_fd},
         "overflows 64 bits"},
        {"region beyond the end of its file",
         message(req(Request::set_mem_table), kVersion,
                 encode_memory_table(std::vector<RegionDesc>{{0, 0x10000, user, 0}})),
         {small.get()},
         "beyond the end of its 0x1000-byte file"},
        {"region fd that is not a file",
         message(req(Request::set_mem_table), kVersion,
                 encode_memory_table(std::vector<RegionDesc>{{0, 0x1000, user, 0}})),
         {event.get()},
         "fd is not a regular file or memfd"},
        {"memory table without fds",
         message(req(Request::set_mem_table), kVersion,
                 encode_memory_table(std::vector<RegionDesc>{{0, kRamSize, user, 0}})),
         {},
         "SET_MEM_TABLE: came with 0 file descriptors, expected 1"},
        {"kick without fd",
         message(req(Request::set_vring_kick), kVersion, encode_u64(0)),
         {},
         "SET_VRING_KICK: came with 0 file descriptors, expected 1"},
        {"kick in polling mode",
         message(req(Request::set_vring_kick), kVersion, encode_u64(kVringNoFdFlag)),
         {},
         "polling without a kick fd is not supported"},
        {"fd on a message that takes none",
         message(req(Request::set_owner), kVersion, {}),
         {event.get()},
         "SET_OWNER: came with 1 file descriptors"},
        {"unknown request", message(77, kVersion, {}), {}, "request 77: not a request"},
    };
    for (const Malformed& m : cases) {
        expect_refused(b, m, false);
        expect_refused(b, m, true);
    }

    // Framing errors always close the connection: the stream cannot be resynchronised.
    const std::vector<Malformed> framing = {
        {"version 2", message(req(Request::get_features), 2, {}), {}, "protocol version 2"},
        {"REPLY flag on a request",
         message(req(Request::get_features), kVersion | kFlagReply, {}),
         {},
         "REPLY flag"},
        {"payload larger than any message",
         message(req(Request::set_mem_table), kVersion, {}, 100000),
         {},
         "payload of 100000 bytes, more than the maximum"},
        {"nine fds",
         message(req(Request::set_owner), kVersion, {}),
         {ram_fd, ram_fd, ram_fd, ram_fd, ram_fd, ram_fd, ram_fd, ram_fd, ram_fd},
         "more than 8 file descriptors"},
    };
    for (const Malformed& m : framing)
        expect_refused(b, m, false);

    // A message cut short by a hang-up.
    {
        Frontend f = b.connect();
        auto bytes = message(req(Request::set_features), kVersion, encode_u64(1));
        // erase, not resize: GCC 12 at -O1 cannot tell resize(size - 3) never
        // grows the vector and reports a huge memset (-Wstringop-overflow).
        bytes.erase(bytes.end() - 3, bytes.end());
        REQUIRE(f.channel().send_raw(bytes).has_value());
    }

    // Every refused descriptor was closed: with one front end connected and
    // idle, the back end holds as many fds after a round of malformed
    // messages as before it.
    auto fds_with_one_client = [&] {
        Frontend f = b.connect();
        REQUIRE(f.get_features().has_value()); // served: earlier connections are gone
        return open_fds(b.process->pid());
    };
    const std::size_t before = fds_with_one_client();
    CHECK(b.backend_log().find("truncated") != std::string::npos);
    std::vector<Malformed> all = cases;
    all.insert(all.end(), framing.begin(), framing.end());
    for (int round = 0; round < 2; ++round)
        for (const Malformed& m : all) {
            Frontend f = b.connect();
            send_with_fds(f.channel().fd(), m.bytes, m.fds);
            (void)f.channel().receive(true, std::chrono::milliseconds(5000));
        }
    CHECK(fds_with_one_client() == before);

    // Still serving real I/O.
    Frontend f = b.connect();
    TestBlkDriver d(f, ram);
    MemoryRegion whole[] = {ram.whole()};
    REQUIRE(d.start(whole).has_value());
    auto r = d.read(0, 512);
    REQUIRE(r.has_value());
    CHECK(b.alive());
}

namespace {

bool mapped(const std::string& name) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find(name) != std::string::npos)
            return true;
    return false;
}

Message mem_table_message(int fd, std::uint64_t size) {
    Message m;
    m.payload = encode_memory_table(std::vector<RegionDesc>{{0, size, 0x10000000, 0}});
    m.header = {static_cast<std::uint32_t>(Request::set_mem_table), kVersion,
                static_cast<std::uint32_t>(m.payload.size())};
    m.fds.emplace_back(::dup(fd));
    return m;
}

} // namespace

TEST_CASE("vhost-blk session: a new memory table unmaps the old one") {
    TempDir dir("vhost");
    write_bytes(dir.file("disk.img"), filled(4096, 0));
    auto disk = BlockDisk::open(dir.file("disk.img"), false);
    REQUIRE(disk.has_value());
    UniqueFd a(::memfd_create("svmkit-test-table-a", MFD_CLOEXEC));
    UniqueFd c(::memfd_create("svmkit-test-table-c", MFD_CLOEXEC));
    REQUIRE(::ftruncate(a.get(), 0x10000) == 0);
    REQUIRE(::ftruncate(c.get(), 0x20000) == 0);
    {
        Session s(*disk, BackendOptions{}, nullptr);
        auto r1 = s.handle(mem_table_message(a.get(), 0x10000));
        CHECK_FALSE(r1.refused.has_value());
        CHECK(mapped("svmkit-test-table-a"));
        auto r2 = s.handle(mem_table_message(c.get(), 0x20000));
        CHECK_FALSE(r2.refused.has_value());
        CHECK_FALSE(mapped("svmkit-test-table-a"));
        CHECK(mapped("svmkit-test-table-c"));
        // A refused table changes nothing.
        auto r3 = s.handle(mem_table_message(a.get(), 0x20000)); // longer than the file
        REQUIRE(r3.refused.has_value());
        CHECK(r3.close); // no REPLY_ACK negotiated: the server would hang up
        CHECK(mapped("svmkit-test-table-c"));
        CHECK_FALSE(mapped("svmkit-test-table-a"));
        CHECK(s.memory().regions().size() == 1);
        CHECK(s.memory().guest_range(0x1ffff, 1).has_value());
        CHECK_FALSE(s.memory().guest_range(0x1ffff, 2).has_value());
        CHECK(s.memory().user_range(0x10000000, 0x20000).has_value());
        CHECK_FALSE(s.memory().user_range(0x0fffffff, 2).has_value());
    }
    // The session's end unmaps the last table.
    CHECK_FALSE(mapped("svmkit-test-table-c"));
}
