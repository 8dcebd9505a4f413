// A test device driver for vhost-user-blk back ends: a small virtio-blk
// driver over a memfd that plays "guest RAM", driving a back end through
// svmkit's vhost-user Frontend (the real protocol on both sides).
//
// It is NOT the guest's driver (guest/ has that); it exists so tests can see
// what a back end does. It is hardened the way docs/virtio.md asks,
// so each hostile mode surfaces as a specific driver error:
//   - the authoritative descriptors live in a private shadow; the shared
//     table is only written;
//   - used idx, id and len are each read once and validated: idx moves by at
//     most the queue size, id < queue size and in flight, len <= the
//     chain's device-writable bytes;
//   - data is copied out of shared memory once, after completion.
// Layout of guest RAM (guest-physical = offset in the memfd):
//   kRingGpa:   descriptor table; +0x1000 avail ring; +0x2000 used ring
//   kBufferGpa: kSlots request slots of kSlotSize bytes, used round-robin:
//               header at +0, status at +64, data at +4096.
// One request is in flight at a time; chain descriptors rotate through the
// table so consecutive requests use different indices.
#pragma once

#include "platform/vhost_user/daemon_process.hpp"
#include "platform/vhost_user/frontend.hpp"
#include "platform/vhost_user/hostile.hpp"
#include "platform/vhost_user/virtio_blk.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

namespace svmkit::test::vhost {

using namespace svmkit::vhost_user;

inline constexpr std::uint64_t kRamSize = 4ull << 20;
inline constexpr std::uint64_t kRingGpa = 0x10000;
inline constexpr std::uint64_t kDescGpa = kRingGpa;
inline constexpr std::uint64_t kAvailGpa = kRingGpa + 0x1000;
inline constexpr std::uint64_t kUsedGpa = kRingGpa + 0x2000;
inline constexpr std::uint64_t kBufferGpa = 0x100000;
inline constexpr std::uint64_t kSlotSize = 0x20000;
inline constexpr std::uint64_t kSlots = 8;
inline constexpr std::uint64_t kMaxData = kSlotSize - 4096;
// The part of guest RAM holding rings and buffers ("what the guest shared").
inline constexpr std::uint64_t kSharedWindow = 2ull << 20;
inline constexpr std::uint16_t kQueueSize = 16;
inline constexpr std::uint64_t kDiskSize = 1ull << 20;

// Guest RAM: a memfd and the front end's own mapping of it.
class GuestRam {
  public:
    GuestRam() {
        fd_ = UniqueFd(::memfd_create("vhost-test-ram", MFD_CLOEXEC));
        REQUIRE(fd_.valid());
        REQUIRE(::ftruncate(fd_.get(), static_cast<off_t>(kRamSize)) == 0);
        void* p = ::mmap(nullptr, kRamSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
        REQUIRE(p != MAP_FAILED);
        base_ = static_cast<std::byte*>(p);
    }
    GuestRam(const GuestRam&) = delete;
    GuestRam& operator=(const GuestRam&) = delete;
    ~GuestRam() { ::munmap(base_, kRamSize); }

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] std::byte* at(std::uint64_t gpa) const { return base_ + gpa; }
    [[nodiscard]] std::uint64_t user_address(std::uint64_t gpa) const {
        return reinterpret_cast<std::uint64_t>(base_) + gpa;
    }
    // All of guest RAM as one region.
    [[nodiscard]] MemoryRegion whole() const { return {fd(), 0, kRamSize, user_address(0), 0}; }
    // Only [gpa, gpa+size): like the table after ESM, which holds the shared window only.
    [[nodiscard]] MemoryRegion window(std::uint64_t gpa, std::uint64_t size) const {
        return {fd(), gpa, size, user_address(gpa), gpa};
    }

  private:
    UniqueFd fd_;
    std::byte* base_ = nullptr;
};

// A Result's error message, or "" (doctest evaluates messages also on
// success when run with -s, so never call .error() unguarded in them).
template <typename T>
std::string error_of(const Result<T>& r) {
    return r ? std::string() : r.error().message;
}

inline UniqueFd make_eventfd() {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    REQUIRE(fd.valid());
    return fd;
}

// Reads and resets an eventfd counter (0 if it was not signalled).
inline std::uint64_t drain_eventfd(int fd) {
    std::uint64_t v = 0;
    if (::read(fd, &v, sizeof v) != sizeof v)
        return 0;
    return v;
}

inline bool wait_readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

struct Buffer {
    std::uint64_t gpa = 0;
    std::uint32_t len = 0;
    bool writable = false;
};

struct Completion {
    std::uint16_t head = 0;
    std::uint32_t len = 0;
};

class TestBlkDriver {
  public:
    TestBlkDriver(Frontend& frontend, GuestRam& ram)
        : frontend_(frontend), ram_(ram), kick_(make_eventfd()), call_(make_eventfd()),
          err_(make_eventfd()) {}

    // SET_OWNER, feature negotiation, SET_MEM_TABLE, queue 0 started.
    Result<void> start(std::span<const MemoryRegion> table,
                       std::uint64_t wanted = kVirtioVersion1 | kVirtioAccessPlatform | kBlkFlush,
                       std::uint64_t required = kVirtioVersion1) {
        SVM_CHECK(frontend_.set_owner());
        SVM_CHECK(frontend_.negotiate(wanted, required));
        event_idx_ = (frontend_.negotiated().features & kVirtioEventIdx) != 0;
        SVM_CHECK(frontend_.set_mem_table(table));
        return start_queue();
    }

    Result<void> start_queue() {
        std::memset(ram_.at(kRingGpa), 0, 0x3000);
        last_used_ = avail_idx_ = 0;
        in_flight_.fill(false);
        QueueSetup q;
        q.size = kQueueSize;
        q.desc_user = ram_.user_address(kDescGpa);
        q.avail_user = ram_.user_address(kAvailGpa);
        q.used_user = ram_.user_address(kUsedGpa);
        q.kick_fd = kick_.get();
        q.call_fd = call_.get();
        q.err_fd = err_.get();
        return frontend_.start_queue(0, q);
    }

    // Submits one chain and waits for its completion (validated).
    Result<Completion> submit(std::span<const Buffer> chain, int timeout_ms = 5000) {
        if (broken_)
            return fail(ExitCode::io, "queue is broken: {}", *broken_);
        REQUIRE(!chain.empty());
        REQUIRE(chain.size() <= 3);
        const auto head = static_cast<std::uint16_t>(next_desc_);
        std::uint64_t writable = 0;
        for (std::size_t i = 0; i < chain.size(); ++i) {
            const auto index = static_cast<std::uint16_t>((next_desc_ + i) % kQueueSize);
            const auto next = static_cast<std::uint16_t>((next_desc_ + i + 1) % kQueueSize);
            std::uint16_t flags = chain[i].writable ? kDescFlagWrite : 0;
            if (i + 1 < chain.size())
                flags |= kDescFlagNext;
            shadow_[index] = Desc{chain[i].gpa, chain[i].len, flags,
                                  static_cast<std::uint16_t>(flags & kDescFlagNext ? next : 0)};
            write_desc(index, shadow_[index]);
            if (chain[i].writable)
                writable += chain[i].len;
        }
        next_desc_ = (next_desc_ + chain.size()) % kQueueSize;
        writable_[head] = writable;
        in_flight_[head] = true;
        std::byte* avail = ram_.at(kAvailGpa);
        // With EVENT_IDX: a signal for this completion (the next used entry)
        // unless the test asked for another used_event.
        if (event_idx_)
            store16(avail + 4 + 2 * kQueueSize, used_event_.value_or(last_used_));
        store16(avail + 4 + 2 * (avail_idx_ % kQueueSize), head);
        ++avail_idx_;
        __atomic_store_n(reinterpret_cast<std::uint16_t*>(avail + 2), avail_idx_, __ATOMIC_RELEASE);
        const std::uint64_t one = 1;
        REQUIRE(::write(kick_.get(), &one, sizeof one) == sizeof one);
        return wait_for(head, timeout_ms);
    }

    // Reads `bytes` at `sector`; the data is copied out of shared memory once.
    Result<std::vector<std::byte>> read(std::uint64_t sector, std::uint32_t bytes,
                                        std::uint64_t* slot_gpa = nullptr) {
        const std::uint64_t slot = next_slot();
        if (slot_gpa != nullptr)
            *slot_gpa = slot;
        put_header(slot, kBlkTypeIn, sector);
        const Buffer chain[] = {
            {slot, 16, false}, {slot + 4096, bytes, true}, {slot + 64, 1, true}};
        SVM_TRY(done, submit(chain));
        SVM_CHECK(check_status(slot, "read"));
        if (done.len != bytes + 1)
            return fail(ExitCode::io, "read: device wrote {} bytes, expected {}", done.len,
                        bytes + 1);
        std::vector<std::byte> out(bytes);
        std::memcpy(out.data(), ram_.at(slot + 4096), bytes);
        return out;
    }

    Result<void> write(std::uint64_t sector, std::span<const std::byte> data) {
        const std::uint64_t slot = next_slot();
        put_header(slot, kBlkTypeOut, sector);
        REQUIRE(data.size() <= kMaxData);
        std::memcpy(ram_.at(slot + 4096), data.data(), data.size());
        const Buffer chain[] = {{slot, 16, false},
                                {slot + 4096, static_cast<std::uint32_t>(data.size()), false},
                                {slot + 64, 1, true}};
        SVM_CHECK(submit(chain));
        return check_status(slot, "write");
    }

    Result<void> flush() {
        const std::uint64_t slot = next_slot();
        put_header(slot, kBlkTypeFlush, 0);
        const Buffer chain[] = {{slot, 16, false}, {slot + 64, 1, true}};
        SVM_CHECK(submit(chain));
        return check_status(slot, "flush");
    }

    Result<std::string> get_id() {
        const std::uint64_t slot = next_slot();
        put_header(slot, kBlkTypeGetId, 0);
        std::memset(ram_.at(slot + 4096), 0, kBlkIdBytes);
        const Buffer chain[] = {
            {slot, 16, false}, {slot + 4096, kBlkIdBytes, true}, {slot + 64, 1, true}};
        SVM_TRY(done, submit(chain));
        SVM_CHECK(check_status(slot, "get-id"));
        if (done.len == 0 || done.len > kBlkIdBytes + 1)
            return fail(ExitCode::io, "get-id: device wrote {} bytes", done.len);
        std::string id(reinterpret_cast<const char*>(ram_.at(slot + 4096)), done.len - 1);
        return std::string(id.c_str()); // up to the first NUL
    }

    // The status byte of the request in slot `slot`, read once.
    [[nodiscard]] std::uint8_t status(std::uint64_t slot) const {
        return __atomic_load_n(reinterpret_cast<const std::uint8_t*>(ram_.at(slot + 64)),
                               __ATOMIC_RELAXED);
    }

    // Whether the shared descriptor table still holds what the driver wrote.
    [[nodiscard]] bool shared_table_matches_shadow() const {
        for (std::uint16_t i = 0; i < kQueueSize; ++i) {
            const std::byte* d = ram_.at(kDescGpa + kDescSize * i);
            if (load_le64(d) != shadow_[i].addr || load_le32(d + 8) != shadow_[i].len ||
                load_le16(d + 12) != shadow_[i].flags || load_le16(d + 14) != shadow_[i].next)
                return false;
        }
        return true;
    }

    // EVENT_IDX: the used_event written with each request (nullopt: the
    // next completion); waiting by polling the used idx instead of the call
    // eventfd (for completions the device must not signal).
    void set_used_event(std::optional<std::uint16_t> v) { used_event_ = v; }
    void wait_by_polling(bool on) { poll_used_ = on; }
    // The device's avail_event (EVENT_IDX), read once.
    [[nodiscard]] std::uint16_t avail_event() const {
        return __atomic_load_n(
            reinterpret_cast<const std::uint16_t*>(ram_.at(kUsedGpa + 4 + 8 * kQueueSize)),
            __ATOMIC_ACQUIRE);
    }
    [[nodiscard]] std::uint16_t avail_idx() const { return avail_idx_; }

    [[nodiscard]] std::uint64_t spurious_interrupts() const { return spurious_; }
    [[nodiscard]] std::uint64_t interrupts() const { return interrupts_; }
    [[nodiscard]] const std::optional<std::string>& broken() const { return broken_; }
    [[nodiscard]] int call_fd() const { return call_.get(); }
    [[nodiscard]] int err_fd() const { return err_.get(); }
    [[nodiscard]] std::uint16_t used_idx_seen() const { return last_used_; }
    [[nodiscard]] std::uint16_t shared_used_idx() const {
        return __atomic_load_n(reinterpret_cast<const std::uint16_t*>(ram_.at(kUsedGpa + 2)),
                               __ATOMIC_ACQUIRE);
    }

  private:
    struct Desc {
        std::uint64_t addr = 0;
        std::uint32_t len = 0;
        std::uint16_t flags = 0;
        std::uint16_t next = 0;
    };

    static void store16(std::byte* p, std::uint16_t v) {
        __atomic_store_n(reinterpret_cast<std::uint16_t*>(p), v, __ATOMIC_RELAXED);
    }

    void write_desc(std::uint16_t i, const Desc& d) {
        std::byte* p = ram_.at(kDescGpa + kDescSize * i);
        store_le64(p, d.addr);
        store_le32(p + 8, d.len);
        store_le16(p + 12, d.flags);
        store_le16(p + 14, d.next);
    }

    std::uint64_t next_slot() { return kBufferGpa + kSlotSize * (slot_++ % kSlots); }

    void put_header(std::uint64_t slot, std::uint32_t type, std::uint64_t sector) {
        std::byte* h = ram_.at(slot);
        store_le32(h, type);
        store_le32(h + 4, 0);
        store_le64(h + 8, sector);
        *ram_.at(slot + 64) = std::byte{0xff}; // status: not written yet
    }

    Result<void> check_status(std::uint64_t slot, const char* what) const {
        const std::uint8_t s = status(slot);
        if (s != kBlkStatusOk)
            return fail(ExitCode::io, "{}: device status {}", what, s);
        return {};
    }

    Unexpected<Error> break_queue(std::string why) {
        broken_ = why;
        return fail(ExitCode::io, "{}", why);
    }

    // Waits for `head` to complete, validating every used entry on the way.
    Result<Completion> wait_for(std::uint16_t head, int timeout_ms) {
        std::optional<Completion> mine;
        while (!mine) {
            if (poll_used_) {
                int waited = 0;
                for (; shared_used_idx() == last_used_ && waited < timeout_ms; ++waited)
                    ::usleep(1000);
                if (waited >= timeout_ms)
                    return fail(ExitCode::io, "no completion within {} ms", timeout_ms);
            } else {
                if (!wait_readable(call_.get(), timeout_ms))
                    return fail(ExitCode::io, "no completion within {} ms", timeout_ms);
                drain_eventfd(call_.get());
                ++interrupts_;
            }
            const std::uint16_t idx = shared_used_idx(); // read once
            const auto delta = static_cast<std::uint16_t>(idx - last_used_);
            if (delta == 0) {
                ++spurious_;
                continue;
            }
            if (delta > kQueueSize)
                return break_queue(
                    fmt::format("used idx moved by {} > queue size {}", delta, kQueueSize));
            for (std::uint16_t i = 0; i < delta; ++i) {
                const std::byte* e = ram_.at(kUsedGpa + 4 + 8 * ((last_used_ + i) % kQueueSize));
                const std::uint32_t id =
                    __atomic_load_n(reinterpret_cast<const std::uint32_t*>(e), __ATOMIC_RELAXED);
                const std::uint32_t len = __atomic_load_n(
                    reinterpret_cast<const std::uint32_t*>(e + 4), __ATOMIC_RELAXED);
                if (id >= kQueueSize)
                    return break_queue(
                        fmt::format("used id {} out of range (queue size {})", id, kQueueSize));
                if (!in_flight_[id])
                    return break_queue(
                        fmt::format("used id {} is not in flight (completed twice?)", id));
                if (len > writable_[id])
                    return break_queue(fmt::format(
                        "used len {} exceeds the {} device-writable bytes", len, writable_[id]));
                in_flight_[id] = false;
                if (id == head)
                    mine = Completion{head, len};
            }
            last_used_ = idx;
        }
        return *mine;
    }

    Frontend& frontend_;
    GuestRam& ram_;
    UniqueFd kick_;
    UniqueFd call_;
    UniqueFd err_;
    std::array<Desc, kQueueSize> shadow_{};
    std::array<bool, kQueueSize> in_flight_{};
    std::array<std::uint64_t, kQueueSize> writable_{};
    std::uint64_t next_desc_ = 0;
    std::uint64_t slot_ = 0;
    std::uint16_t avail_idx_ = 0;
    std::uint16_t last_used_ = 0;
    std::uint64_t spurious_ = 0;
    std::uint64_t interrupts_ = 0;
    bool event_idx_ = false;
    std::optional<std::uint16_t> used_event_;
    bool poll_used_ = false;
    std::optional<std::string> broken_;
};

// A disk image with a known pattern, and a back end serving it.
struct BackendUnderTest {
    TempDir dir{"vhost"};
    std::string disk = dir.file("disk.img");
    std::string socket = dir.file("blk.sock");
    std::string log = dir.file("backend.log");
    std::vector<std::byte> pattern = random_bytes(kDiskSize, 7);
    std::optional<DaemonProcess> process;

    BackendUnderTest() { write_bytes(disk, pattern); }

    void start_ours(const std::string& hostile = "none", bool read_only = false,
                    const std::string& stats = "") {
        auto p = DaemonProcess::spawn(
            vhost_blk_command(SVMKIT_VHOST_BLK, socket, disk, read_only, hostile, stats), log);
        REQUIRE_MESSAGE(p.has_value(), error_of(p));
        process.emplace(std::move(*p));
    }

    void start_qemu(bool writable = true) {
        auto p = DaemonProcess::spawn(qemu_storage_daemon_command(socket, disk, writable), log);
        REQUIRE_MESSAGE(p.has_value(), error_of(p));
        process.emplace(std::move(*p));
    }

    Frontend connect() {
        auto f = Frontend::connect(socket);
        REQUIRE_MESSAGE(f.has_value(), error_of(f) << "\nback-end log:\n" << backend_log());
        return std::move(*f);
    }

    [[nodiscard]] std::string backend_log() const { return process ? process->log() : ""; }
    [[nodiscard]] bool alive() { return process && process->running(); }
};

// The start-up most back-end tests share: our back end over its pattern
// disk, a front end connected to it, and a driver started with `features`
// on a memory table of the whole guest RAM.
struct StartedBackend {
    BackendUnderTest backend;
    Frontend frontend;
    GuestRam ram;
    TestBlkDriver driver;

    explicit StartedBackend(std::uint64_t features = kVirtioVersion1 | kVirtioAccessPlatform |
                                                     kBlkFlush)
        : frontend(start_and_connect(backend)), driver(frontend, ram) {
        MemoryRegion table[] = {ram.whole()};
        auto started = driver.start(table, features);
        REQUIRE_MESSAGE(started.has_value(), error_of(started) << "\n" << backend.backend_log());
    }

  private:
    static Frontend start_and_connect(BackendUnderTest& b) {
        b.start_ours();
        return b.connect();
    }
};

} // namespace svmkit::test::vhost
