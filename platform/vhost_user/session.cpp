#include "platform/vhost_user/session.hpp"

#include "base/checked.hpp"
#include "platform/vhost_user/virtio_blk.hpp"

#include <algorithm>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

namespace svmkit::vhost_user {

namespace {

constexpr unsigned kStormSignalsPerCompletion = 1000;
// Rings' worth of requests one kick serves at most (process_queue).
constexpr std::uint32_t kPassesPerKick = 4;
constexpr std::uint32_t kHostileLenExcess = 4096;
constexpr std::uint64_t kOutsidePage = 4096;

Reply make_reply(Request request, std::vector<std::byte> payload) {
    Header h{static_cast<std::uint32_t>(request), kVersion | kFlagReply,
             static_cast<std::uint32_t>(payload.size())};
    return Reply{h, std::move(payload)};
}

template <typename T>
const T* body(const ParsedRequest& r) {
    return std::get_if<T>(&r.body);
}

} // namespace

Session::Session(const BlockDisk& disk, BackendOptions options, std::FILE* log)
    : disk_(disk), options_(options), log_(log) {
    options_.queues = std::clamp<std::size_t>(options_.queues, 1, 8);
    queues_.resize(options_.queues);
}

std::uint64_t Session::offered_features() const {
    std::uint64_t f = kVirtioVersion1 | kFeatureProtocolFeatures | kBlkSegMax | kBlkBlockSize |
                      kBlkFlush | kVirtioEventIdx;
    if (options_.hostile != HostileMode::no_access_platform)
        f |= kVirtioAccessPlatform;
    if (disk_.read_only())
        f |= kBlkReadOnly;
    if (options_.queues > 1)
        f |= kBlkMq;
    return f;
}

std::uint64_t Session::offered_protocol_features() {
    return kProtocolMq | kProtocolReplyAck | kProtocolConfig;
}

void Session::logf(const std::string& message) const {
    if (log_ != nullptr)
        std::fprintf(log_, "svmkit-vhost-blk: %s\n", message.c_str());
}

Response Session::handle(Message message) {
    Response out;
    const bool need_reply = (message.header.flags & kFlagNeedReply) != 0;
    auto parsed = parse_request(message.header, message.payload, message.fds.size());
    Result<std::optional<Reply>> result =
        parsed ? dispatch(*parsed, std::move(message.fds))
               : Result<std::optional<Reply>>(unexpected(parsed.error()));
    const bool acks = (protocol_features_ & kProtocolReplyAck) != 0;
    const auto request = static_cast<Request>(message.header.request);
    if (result) {
        if (*result)
            out.reply = std::move(**result);
        else if (need_reply && acks)
            out.reply = make_reply(request, encode_u64(0));
        return out;
    }
    out.refused = result.error();
    logf("refused " + result.error().message);
    if (parsed && parsed->request == Request::get_config)
        out.reply = make_reply(request, {}); // the spec's "error" reply: empty payload
    else if (need_reply && acks)
        out.reply = make_reply(request, encode_u64(1));
    else
        out.close = true;
    return out;
}

Result<DeviceQueue*> Session::ring(std::uint32_t index) {
    if (index >= queues_.size())
        return fail(ExitCode::malformed, "ring index {} out of range ({} rings)", index,
                    queues_.size());
    return &queues_[index];
}

Result<std::optional<Reply>> Session::dispatch(const ParsedRequest& r, std::vector<UniqueFd> fds) {
    const std::string name = request_name(r.request);
    auto refuse = [&](std::string why) -> Result<std::optional<Reply>> {
        return fail(ExitCode::malformed, "{}: {}", name, why);
    };
    auto none = []() -> Result<std::optional<Reply>> {
        return std::optional<Reply>{};
    };
    switch (r.request) {
    case Request::get_features:
        return std::optional<Reply>(make_reply(r.request, encode_u64(offered_features())));
    case Request::set_features: {
        const std::uint64_t v = *body<std::uint64_t>(r);
        if ((v & ~offered_features()) != 0)
            return refuse(fmt::format("acknowledges features {:#x} the back end does not offer",
                                      v & ~offered_features()));
        if ((v & kVirtioVersion1) == 0)
            return refuse("VERSION_1 is required (no legacy devices)");
        features_ = v;
        features_set_ = true;
        // Without protocol features, rings start enabled (vhost-user.rst "Ring states").
        if ((v & kFeatureProtocolFeatures) == 0)
            for (DeviceQueue& q : queues_)
                q.set_enabled(true);
        return none();
    }
    case Request::set_owner:
        return none();
    case Request::reset_owner:
        for (DeviceQueue& q : queues_) {
            q.stop();
            q.set_enabled(false);
        }
        return none();
    case Request::get_protocol_features:
        return std::optional<Reply>(make_reply(r.request, encode_u64(offered_protocol_features())));
    case Request::set_protocol_features: {
        const std::uint64_t v = *body<std::uint64_t>(r);
        if ((v & ~offered_protocol_features()) != 0)
            return refuse(fmt::format("acknowledges protocol features {:#x} not offered",
                                      v & ~offered_protocol_features()));
        protocol_features_ = v;
        return none();
    }
    case Request::get_queue_num:
        return std::optional<Reply>(make_reply(r.request, encode_u64(queues_.size())));
    case Request::set_mem_table: {
        const auto& regions = *body<std::vector<RegionDesc>>(r);
        auto table = MemoryTable::map(regions, std::move(fds));
        if (!table)
            return refuse(table.error().message);
        // Refuse a table that would strand a configured ring; keep the old one.
        for (std::size_t i = 0; i < queues_.size(); ++i)
            if (auto ok = queues_[i].check_mappable(*table); !ok)
                return refuse("new table leaves " + ok.error().message);
        memory_ = std::move(*table);
        for (DeviceQueue& q : queues_)
            (void)q.map(memory_); // checked just above
        logf(fmt::format("memory table: {} regions", regions.size()));
        return none();
    }
    case Request::set_vring_num:
    case Request::set_vring_base:
    case Request::set_vring_enable:
    case Request::get_vring_base: {
        const VringState s = *body<VringState>(r);
        SVM_TRY(q, ring(s.index));
        if (r.request == Request::get_vring_base) {
            const std::uint16_t base = q->stop();
            return std::optional<Reply>(make_reply(r.request, encode_vring_state({s.index, base})));
        }
        if (r.request == Request::set_vring_enable) {
            if ((features_ & kFeatureProtocolFeatures) == 0)
                return refuse("protocol features were not negotiated");
            q->set_enabled(s.num == 1);
            process_queue(s.index);
            return none();
        }
        if (q->started())
            return refuse(fmt::format("ring {} is running (stop it with GET_VRING_BASE)", s.index));
        if (r.request == Request::set_vring_num)
            q->set_size(s.num);
        else
            q->set_base(static_cast<std::uint16_t>(s.num));
        return none();
    }
    case Request::set_vring_addr: {
        const VringAddr& a = *body<VringAddr>(r);
        SVM_TRY(q, ring(a.index));
        if (q->started())
            return refuse(fmt::format("ring {} is running (stop it with GET_VRING_BASE)", a.index));
        q->set_addr(a);
        if (auto ok = q->map(memory_); !ok)
            return refuse(ok.error().message);
        return none();
    }
    case Request::set_vring_kick:
    case Request::set_vring_call:
    case Request::set_vring_err: {
        const VringFile f = *body<VringFile>(r);
        SVM_TRY(q, ring(f.index));
        UniqueFd fd = f.has_fd ? std::move(fds.at(0)) : UniqueFd();
        if (r.request == Request::set_vring_kick) {
            if (!f.has_fd)
                return refuse("polling without a kick fd is not supported");
            if (!features_set_)
                return refuse("SET_FEATURES must come before a ring starts");
            q->set_kick(std::move(fd));
            q->start((features_ & kVirtioEventIdx) != 0);
            process_queue(f.index);
        } else if (r.request == Request::set_vring_call) {
            q->set_call(std::move(fd));
        } else {
            q->set_err(std::move(fd));
        }
        return none();
    }
    case Request::get_config: {
        const ConfigAccess& c = *body<ConfigAccess>(r);
        SVM_TRY(bytes, config_bytes(c.offset, c.data.size()));
        return std::optional<Reply>(make_reply(r.request, encode_config(c.offset, c.flags, bytes)));
    }
    case Request::set_config:
        return refuse("the virtio-blk config space is read-only here");
    }
    return refuse("not served");
}

Result<std::vector<std::byte>> Session::config_bytes(std::uint32_t offset, std::size_t size) const {
    std::vector<std::byte> space(kMaxConfigSize);
    store_le64(space.data() + kBlkConfigCapacity, disk_.sectors());
    store_le32(space.data() + kBlkConfigSizeMax, 0);
    store_le32(space.data() + kBlkConfigSegMax, kBlkSegMaxValue);
    store_le32(space.data() + kBlkConfigBlkSize, static_cast<std::uint32_t>(kSectorSize));
    store_le16(space.data() + kBlkConfigNumQueues, static_cast<std::uint16_t>(queues_.size()));
    if (offset + size > space.size()) // parse_request bounds it; kept for direct callers
        return fail(ExitCode::malformed, "config range {}+{} outside the config space", offset,
                    size);
    const auto from = std::span<const std::byte>(space).subspan(offset, size);
    return std::vector<std::byte>(from.begin(), from.end());
}

void Session::kick_failed(std::size_t index, const std::string& why) {
    if (index >= queues_.size())
        return;
    queues_[index].mark_broken("kick fd: " + why);
    logf(fmt::format("ring {} broken: kick fd: {}", index, why));
}

void Session::process_queue(std::size_t index) {
    if (index >= queues_.size())
        return;
    DeviceQueue& q = queues_[index];
    bool completed = false;
    // The driver need not kick while the device works through the ring
    // (suppress_kicks); once that is off again the device looks once more, so
    // a chain published in between never waits for a kick that is not coming.
    // A driver that keeps publishing as its requests complete keeps the
    // device here; after kPassesPerKick rings' worth it goes back to its
    // event loop (messages, signals) and kicks itself to return. The same
    // bound ends a hostile driver's endless stream of avail entries.
    std::uint32_t budget = q.size() * kPassesPerKick;
    for (bool more = true; more;) {
        q.suppress_kicks(true);
        for (; budget > 0 && q.running(); --budget) {
            auto chain = q.pop(memory_);
            if (!chain) {
                q.mark_broken(chain.error().message);
                logf(fmt::format("ring {} broken: {}", index, chain.error().message));
                break;
            }
            if (!*chain)
                break;
            // Hostile: the buffers of requests completed before this one
            // change under the driver now.
            if (active_hostile() == HostileMode::rewrite_bounce_after_completion)
                rewrite_completed_buffers(q, **chain);
            auto len = serve_blk_request(**chain, disk_);
            if (!len) {
                q.mark_broken(len.error().message);
                logf(fmt::format("ring {} broken: {}", index, len.error().message));
                break;
            }
            complete(q, **chain, *len);
            // Published, and the driver notified unless it said it does not
            // wait (VIRTQ_AVAIL_F_NO_INTERRUPT), at once rather than at the
            // end of the batch: a driver waiting for this request starts on
            // it (copying it out of the bounce pool) while the next one is
            // read.
            q.publish_used();
            q.notify();
            completed = true;
        }
        q.suppress_kicks(false);
        more = q.has_avail();
        if (more && budget == 0) {
            const std::uint64_t one = 1;
            (void)!::write(q.kick_fd(), &one, sizeof one);
            break;
        }
    }
    if (!completed)
        return;
    if (active_hostile() == HostileMode::interrupt_storm)
        for (unsigned i = 0; i < kStormSignalsPerCompletion; ++i)
            q.force_notify();
}

void Session::complete(DeviceQueue& q, const Chain& chain, std::uint32_t len) {
    const std::uint32_t head = chain.head;
    const HostileMode hostile = active_hostile();
    ++completions_;
    switch (hostile) {
    case HostileMode::used_id_out_of_range:
        q.add_used(head + q.size(), len);
        break;
    case HostileMode::duplicate_completion:
        q.add_used(head, len);
        q.add_used(head, len);
        break;
    case HostileMode::len_too_large: {
        const std::uint64_t big = chain.writable_bytes + kHostileLenExcess;
        q.add_used(head, static_cast<std::uint32_t>(std::min<std::uint64_t>(big, UINT32_MAX)));
        break;
    }
    case HostileMode::used_idx_jump:
        q.add_used(head, len);
        q.advance_used(static_cast<std::uint16_t>(q.size()));
        break;
    case HostileMode::rewrite_descriptors:
        for (std::uint16_t i : chain.indices) {
            std::byte* d = q.desc_table() + kDescSize * i;
            __atomic_store_n(reinterpret_cast<std::uint64_t*>(d), ~std::uint64_t{0},
                             __ATOMIC_RELAXED);
            __atomic_store_n(reinterpret_cast<std::uint32_t*>(d + 8), ~std::uint32_t{0},
                             __ATOMIC_RELAXED);
            __atomic_store_n(reinterpret_cast<std::uint16_t*>(d + 12),
                             static_cast<std::uint16_t>(kDescFlagNext | kDescFlagWrite),
                             __ATOMIC_RELAXED);
            __atomic_store_n(reinterpret_cast<std::uint16_t*>(d + 14), chain.head,
                             __ATOMIC_RELAXED);
        }
        q.add_used(head, len);
        break;
    default:
        q.add_used(head, len);
        break;
    }
    if (hostile == HostileMode::rewrite_bounce_after_completion)
        for (const Segment& s : chain.segments)
            completed_buffers_.emplace_back(s.gpa, s.len);
    if (hostile == HostileMode::dma_outside_shared)
        write_outside_shared();
}

// The attack is on the driver's copy-out: buffers the driver got back, and
// has copied out or should have, change afterwards. Memory the driver has
// already handed out again, in the chain being served or one still waiting
// in the ring (a bounce pool reuses its slots at once), is left alone:
// overwriting a request in flight is a different attack (a device writing
// wrong data to its own disk), which no driver can detect.
void Session::rewrite_completed_buffers(const DeviceQueue& q, const Chain& current) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> live;
    const auto note = [&live](const Chain& c) {
        for (const Segment& s : c.segments)
            live.emplace_back(s.gpa, s.len);
    };
    note(current);
    for (std::uint32_t ahead = 0; ahead < q.size(); ++ahead) {
        auto next = q.peek(memory_, static_cast<std::uint16_t>(ahead));
        if (!next || !*next)
            break; // the ring's end (an invalid chain breaks it when it is taken)
        note(**next);
    }
    for (const auto& buffer : completed_buffers_) {
        const std::uint64_t gpa = buffer.first, len = buffer.second;
        const bool in_use = std::any_of(live.begin(), live.end(), [&](const auto& l) {
            return ranges_overlap(gpa, len, l.first, l.second);
        });
        if (auto p = memory_.guest_range(gpa, len); p && !in_use)
            std::memset(*p, kHostileRewriteByte, len);
    }
    completed_buffers_.clear();
}

void Session::write_outside_shared() {
    auto regions = memory_.regions();
    if (regions.empty())
        return;
    const auto& first = regions[0];
    struct stat st {};
    if (::fstat(first.fd.get(), &st) != 0)
        return;
    // Every part of this file the current table covers (regions may share it).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> covered;
    for (const auto& r : regions) {
        struct stat rs {};
        if (::fstat(r.fd.get(), &rs) == 0 && rs.st_dev == st.st_dev && rs.st_ino == st.st_ino)
            covered.emplace_back(r.desc.mmap_offset, r.desc.size);
    }
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    for (std::uint64_t off = 0; off + kOutsidePage <= file_size; off += kOutsidePage) {
        bool inside = std::any_of(covered.begin(), covered.end(), [&](const auto& c) {
            return ranges_overlap(off, kOutsidePage, c.first, c.second);
        });
        if (inside)
            continue;
        if (::pwrite(first.fd.get(), kHostileDmaMarker.data(), kHostileDmaMarker.size(),
                     static_cast<off_t>(off)) < 0)
            logf("hostile dma-outside-shared: write failed");
        return;
    }
}

bool Session::storm_active() const {
    if (active_hostile() != HostileMode::interrupt_storm)
        return false;
    return std::any_of(queues_.begin(), queues_.end(),
                       [](const DeviceQueue& q) { return q.started() && q.call_fd() >= 0; });
}

void Session::storm_tick() {
    for (DeviceQueue& q : queues_)
        if (q.started())
            q.force_notify();
}

} // namespace svmkit::vhost_user
