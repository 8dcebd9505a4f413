#include "platform/vhost_user/frontend.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace svmkit::vhost_user {

template <typename... Args>
Error Frontend::error(Request request, fmt::format_string<Args...> format, Args&&... args) const {
    return Error{ExitCode::io, fmt::format("vhost-user {}: {}: {}", path_, request_name(request),
                                           fmt::format(format, std::forward<Args>(args)...))};
}

Result<Frontend> Frontend::connect(const std::string& socket_path, const ConnectOptions& options) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
        return fail(ExitCode::usage, "vhost-user {}: socket path must be 1 to {} bytes",
                    socket_path, sizeof addr.sun_path - 1);
    std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
    const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
    for (;;) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd.valid())
            return fail(ExitCode::io, "vhost-user {}: socket: {}", socket_path,
                        std::strerror(errno));
        if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0)
            return Frontend(Channel(std::move(fd), socket_path), socket_path, options);
        const int err = errno;
        const bool starting = err == ENOENT || err == ECONNREFUSED || err == EAGAIN;
        if (!starting || std::chrono::steady_clock::now() >= deadline)
            return fail(ExitCode::io, "vhost-user {}: cannot connect{}: {}", socket_path,
                        starting ? fmt::format(" within {} ms", options.connect_timeout.count())
                                 : std::string(),
                        std::strerror(err));
        std::this_thread::sleep_for(options.retry_interval);
    }
}

Result<std::vector<std::byte>> Frontend::call(Request request, std::span<const std::byte> payload,
                                              std::span<const int> fds, bool has_reply) {
    const bool ack = !has_reply && negotiated_.has_protocol(kProtocolReplyAck);
    Header h{static_cast<std::uint32_t>(request), kVersion | (ack ? kFlagNeedReply : 0u), 0};
    if (auto r = channel_.send(h, payload, fds); !r)
        return unexpected(error(request, "{}", r.error().message));
    if (!has_reply && !ack)
        return std::vector<std::byte>{};
    auto got = channel_.receive(true, options_.reply_timeout);
    if (!got)
        return unexpected(error(request, "waiting for the reply: {}", got.error().message));
    if (!*got)
        return unexpected(error(request, "back end closed the connection instead of replying"));
    Message& reply = **got;
    if (reply.header.request != h.request)
        return unexpected(error(request, "reply is for {}", request_name(reply.header.request)));
    if (!reply.fds.empty())
        return unexpected(error(request, "reply came with {} file descriptors", reply.fds.size()));
    if (ack) {
        auto status = decode_u64(reply.payload, "ack");
        if (!status)
            return unexpected(error(request, "{}", status.error().message));
        if (*status != 0)
            return unexpected(error(request, "back end refused ({})", *status));
        return std::vector<std::byte>{};
    }
    return std::move(reply.payload);
}

Result<void> Frontend::set_owner() {
    SVM_CHECK(call(Request::set_owner, {}, {}, false));
    return {};
}

Result<void> Frontend::reset_owner() {
    SVM_CHECK(call(Request::reset_owner, {}, {}, false));
    return {};
}

Result<std::uint64_t> Frontend::get_features() {
    SVM_TRY(reply, call(Request::get_features, {}, {}, true));
    auto v = decode_u64(reply, "reply");
    if (!v)
        return unexpected(error(Request::get_features, "{}", v.error().message));
    return *v;
}

Result<void> Frontend::set_features(std::uint64_t features) {
    auto payload = encode_u64(features);
    SVM_CHECK(call(Request::set_features, payload, {}, false));
    negotiated_.features = features;
    return {};
}

Result<std::uint64_t> Frontend::get_protocol_features() {
    SVM_TRY(reply, call(Request::get_protocol_features, {}, {}, true));
    auto v = decode_u64(reply, "reply");
    if (!v)
        return unexpected(error(Request::get_protocol_features, "{}", v.error().message));
    return *v;
}

Result<void> Frontend::set_protocol_features(std::uint64_t features) {
    auto payload = encode_u64(features);
    // Sent without NEED_REPLY, like QEMU: REPLY_ACK is being negotiated by it.
    const std::uint64_t before = negotiated_.protocol;
    negotiated_.protocol = 0;
    auto r = call(Request::set_protocol_features, payload, {}, false);
    if (!r) {
        negotiated_.protocol = before;
        return unexpected(std::move(r.error()));
    }
    negotiated_.protocol = features;
    return {};
}

Result<Negotiated> Frontend::negotiate(std::uint64_t wanted, std::uint64_t required,
                                       std::uint64_t wanted_protocol) {
    SVM_TRY(offered, get_features());
    negotiated_.offered = offered;
    if ((offered & required) != required)
        return unexpected(error(Request::get_features,
                                "back end lacks required features {:#x} (offers {:#x})",
                                required & ~offered, offered));
    std::uint64_t features = wanted & offered & ~kFeatureProtocolFeatures;
    if ((offered & kFeatureProtocolFeatures) != 0) {
        SVM_TRY(offered_protocol, get_protocol_features());
        negotiated_.offered_protocol = offered_protocol;
        SVM_CHECK(set_protocol_features(wanted_protocol & offered_protocol));
        features |= kFeatureProtocolFeatures;
    }
    SVM_CHECK(set_features(features));
    return negotiated_;
}

Result<std::uint64_t> Frontend::get_queue_num() {
    if (!negotiated_.has_protocol(kProtocolMq))
        return unexpected(error(Request::get_queue_num, "MQ protocol feature not negotiated"));
    SVM_TRY(reply, call(Request::get_queue_num, {}, {}, true));
    auto v = decode_u64(reply, "reply");
    if (!v)
        return unexpected(error(Request::get_queue_num, "{}", v.error().message));
    return *v;
}

Result<std::vector<std::byte>> Frontend::get_config(std::uint32_t offset, std::uint32_t size) {
    if (!negotiated_.has_protocol(kProtocolConfig))
        return unexpected(error(Request::get_config, "CONFIG protocol feature not negotiated"));
    if (size == 0 || std::uint64_t{offset} + size > kMaxConfigSize)
        return unexpected(
            error(Request::get_config, "range {}+{} outside the config space", offset, size));
    std::vector<std::byte> zeros(size);
    auto payload = encode_config(offset, 0, zeros);
    SVM_TRY(reply, call(Request::get_config, payload, {}, true));
    // The back end signals failure with an empty payload.
    if (reply.empty())
        return unexpected(error(Request::get_config, "back end refused ({}+{})", offset, size));
    auto c = decode_config(reply, "reply");
    if (!c)
        return unexpected(error(Request::get_config, "{}", c.error().message));
    if (c->offset != offset || c->data.size() != size)
        return unexpected(error(Request::get_config, "reply is for {}+{}, asked {}+{}", c->offset,
                                c->data.size(), offset, size));
    return std::move(c->data);
}

Result<void> Frontend::set_config(std::uint32_t offset, std::span<const std::byte> data,
                                  std::uint32_t flags) {
    if (!negotiated_.has_protocol(kProtocolConfig))
        return unexpected(error(Request::set_config, "CONFIG protocol feature not negotiated"));
    auto payload = encode_config(offset, flags, data);
    SVM_CHECK(call(Request::set_config, payload, {}, false));
    return {};
}

Result<void> Frontend::set_mem_table(std::span<const MemoryRegion> regions) {
    if (regions.empty() || regions.size() > kMaxRegions)
        return unexpected(error(Request::set_mem_table, "{} regions, must be 1 to {}",
                                regions.size(), kMaxRegions));
    std::vector<RegionDesc> descs;
    std::vector<int> fds;
    for (const MemoryRegion& r : regions) {
        descs.push_back(RegionDesc{r.guest_address, r.size, r.user_address, r.mmap_offset});
        fds.push_back(r.fd);
    }
    auto payload = encode_memory_table(descs);
    SVM_CHECK(call(Request::set_mem_table, payload, fds, false));
    return {};
}

Result<void> Frontend::set_vring_num(std::uint32_t index, std::uint32_t num) {
    auto payload = encode_vring_state({index, num});
    SVM_CHECK(call(Request::set_vring_num, payload, {}, false));
    return {};
}

Result<void> Frontend::set_vring_addr(const VringAddr& addr) {
    auto payload = encode_vring_addr(addr);
    SVM_CHECK(call(Request::set_vring_addr, payload, {}, false));
    return {};
}

Result<void> Frontend::set_vring_base(std::uint32_t index, std::uint16_t base) {
    auto payload = encode_vring_state({index, base});
    SVM_CHECK(call(Request::set_vring_base, payload, {}, false));
    return {};
}

Result<std::uint16_t> Frontend::get_vring_base(std::uint32_t index) {
    auto payload = encode_vring_state({index, 0});
    SVM_TRY(reply, call(Request::get_vring_base, payload, {}, true));
    auto s = decode_vring_state(reply, "reply");
    if (!s)
        return unexpected(error(Request::get_vring_base, "{}", s.error().message));
    if (s->index != index || s->num > 0xffff)
        return unexpected(error(Request::get_vring_base, "reply {{index {}, base {}}} for ring {}",
                                s->index, s->num, index));
    return static_cast<std::uint16_t>(s->num);
}

Result<void> Frontend::send_vring_fd(Request request, std::uint32_t index, int fd) {
    if (index > kMaxVringIndex)
        return unexpected(error(request, "ring index {} out of range", index));
    std::uint64_t v = index;
    if (fd < 0)
        v |= kVringNoFdFlag;
    auto payload = encode_u64(v);
    int fds[1] = {fd};
    SVM_CHECK(
        call(request, payload, fd < 0 ? std::span<const int>() : std::span<const int>(fds), false));
    return {};
}

Result<void> Frontend::set_vring_kick(std::uint32_t index, int fd) {
    return send_vring_fd(Request::set_vring_kick, index, fd);
}

Result<void> Frontend::set_vring_call(std::uint32_t index, int fd) {
    return send_vring_fd(Request::set_vring_call, index, fd);
}

Result<void> Frontend::set_vring_err(std::uint32_t index, int fd) {
    return send_vring_fd(Request::set_vring_err, index, fd);
}

Result<void> Frontend::set_vring_enable(std::uint32_t index, bool enable) {
    if (!negotiated_.has(kFeatureProtocolFeatures))
        return unexpected(error(Request::set_vring_enable, "protocol features not negotiated"));
    auto payload = encode_vring_state({index, enable ? 1u : 0u});
    SVM_CHECK(call(Request::set_vring_enable, payload, {}, false));
    return {};
}

Result<void> Frontend::start_queue(std::uint32_t index, const QueueSetup& s) {
    SVM_CHECK(set_vring_num(index, s.size));
    SVM_CHECK(set_vring_base(index, s.base));
    SVM_CHECK(set_vring_addr(VringAddr{index, 0, s.desc_user, s.used_user, s.avail_user, 0}));
    SVM_CHECK(set_vring_kick(index, s.kick_fd));
    SVM_CHECK(set_vring_call(index, s.call_fd));
    if (s.err_fd >= 0)
        SVM_CHECK(set_vring_err(index, s.err_fd));
    if (negotiated_.has(kFeatureProtocolFeatures))
        SVM_CHECK(set_vring_enable(index, true));
    return {};
}

} // namespace svmkit::vhost_user
