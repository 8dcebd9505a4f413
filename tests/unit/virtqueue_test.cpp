// The hardened split virtqueue (guest/virtqueue.cpp) against a device played
// by the test: the test reads the available ring and the shared descriptor
// table as a device would, and writes the used ring, honestly or not. Every
// rule of the hardening list is exercised: id range, head of a chain in
// flight, completed twice, len within the writable length, used idx moving
// by more than what is in flight, and a device rewriting the shared table.
#include "guest/virtqueue.h"
#include "guest/zalloc.h"
#include "virtio_device_model.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace svmkit;
using namespace svmkit::guest;

namespace {

constexpr std::uint64_t kRam = 4u << 20;
constexpr std::uint64_t kArena = 0x10000; // coherent memory for the rings

// A queue on a direct DmaDevice in guest RAM, with the test as its device.
struct QueueRig {
    platform::GuestMemory memory;
    test::VirtioBlkModel model; // only for its gates (console capture)
    svmkit_gates gates = test::VirtioBlkModel::gates();
    Calls calls{&gates};
    Console console{calls};
    VirtioReport report{&console};
    BumpArena arena{gpa_ptr(kArena), 0x100000, 0};
    DmaDevice dma = DmaDevice::direct(&arena);
    std::unique_ptr<Virtqueue> vq = std::make_unique<Virtqueue>();
    std::uint16_t device_avail = 0; // the device's next avail entry
    std::uint16_t device_used = 0;  // the device's used idx

    QueueRig(std::uint16_t size, platform::GuestMemory m, bool event_idx)
        : memory(std::move(m)), model(memory) {
        REQUIRE(vq->init(&dma, 3, size, &report, "test-device", event_idx) == VirtioErr::none);
    }

    // `event_idx`: as if VIRTIO_F_EVENT_IDX was negotiated.
    static QueueRig make(std::uint16_t size, bool event_idx = false) {
        auto m = platform::GuestMemory::create(kRam);
        REQUIRE_MESSAGE(m.has_value(), m.error().message);
        return QueueRig(size, std::move(*m), event_idx);
    }

    // EVENT_IDX fields: the driver's used_event (after the avail ring) and
    // the device's avail_event (after the used ring).
    std::uint16_t used_event() {
        return __atomic_load_n(gpa_ptr<std::uint16_t>(vq->avail_addr() + 4 + 2 * vq->size()),
                               __ATOMIC_ACQUIRE);
    }
    void set_avail_event(std::uint16_t v) {
        __atomic_store_n(gpa_ptr<std::uint16_t>(vq->used_addr() + 4 + 8 * vq->size()), v,
                         __ATOMIC_RELEASE);
    }

    VirtqDesc* table() { return gpa_ptr<VirtqDesc>(vq->desc_addr()); }
    std::uint16_t avail_idx() {
        return __atomic_load_n(&gpa_ptr<VirtqAvailHeader>(vq->avail_addr())->idx, __ATOMIC_ACQUIRE);
    }
    // The next chain head the device would pop (-1 when none).
    int pop() {
        if (device_avail == avail_idx())
            return -1;
        const auto* ring = gpa_ptr<std::uint16_t>(vq->avail_addr() + 4);
        return ring[device_avail++ % vq->size()];
    }
    // The chain at `head` as the shared table describes it.
    std::vector<VirtqDesc> chain(std::uint16_t head) {
        std::vector<VirtqDesc> out;
        std::uint16_t i = head;
        for (unsigned n = 0; n < vq->size(); ++n) {
            out.push_back(table()[i]);
            if ((table()[i].flags & kVirtqDescFNext) == 0)
                break;
            i = table()[i].next;
        }
        return out;
    }
    VirtqUsedHeader* used() { return gpa_ptr<VirtqUsedHeader>(vq->used_addr()); }
    void write_used(std::uint16_t slot, std::uint32_t id, std::uint32_t len) {
        auto* ring = gpa_ptr<VirtqUsedElem>(vq->used_addr() + 4);
        ring[slot % vq->size()] = VirtqUsedElem{id, len};
    }
    void publish(std::uint16_t idx) {
        device_used = idx;
        __atomic_store_n(&used()->idx, idx, __ATOMIC_RELEASE);
    }
    void complete(std::uint32_t id, std::uint32_t len) {
        write_used(device_used, id, len);
        publish(static_cast<std::uint16_t>(device_used + 1));
    }
    const std::string& console_text() const { return model.console; }
};

// A request-shaped chain: one readable buffer, one writable of `wlen` bytes.
VirtioErr add2(Virtqueue& vq, std::uintptr_t token, std::uint32_t wlen = 512) {
    const VirtqBuffer bufs[2] = {{0x300000 + token * 0x1000, 16, false},
                                 {0x380000 + token * 0x1000, wlen, true}};
    return vq.add(bufs, 2, reinterpret_cast<void*>(token));
}

// The device completes the next chain it pops, and the driver takes it back.
void round_trip(QueueRig& rig) {
    const int head = rig.pop();
    REQUIRE(head >= 0);
    rig.complete(static_cast<std::uint32_t>(head), 512);
    void* token = nullptr;
    std::uint32_t len = 0;
    REQUIRE(rig.vq->get_used(&token, &len));
}

// Checks the queue broke for `why` with a message naming it on the console.
void expect_broken(QueueRig& rig, VirtioErr why, const char* words) {
    CHECK(rig.vq->broken());
    CHECK(rig.vq->broken_reason() == why);
    CHECK(rig.report.code() == why);
    CHECK_MESSAGE(std::string(rig.report.message()).find(words) != std::string::npos,
                  rig.report.message());
    CHECK(rig.console_text().find(words) != std::string::npos);
    CHECK(rig.console_text().find("marked broken") != std::string::npos);
    // Broken for good: nothing more is accepted or consumed...
    void* token = nullptr;
    std::uint32_t len = 0;
    CHECK(add2(*rig.vq, 99) == VirtioErr::queue_broken);
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    CHECK_FALSE(rig.vq->needs_notify());
    // ...and every chain in flight comes back exactly once to be failed.
    std::set<void*> detached;
    const unsigned in_flight = rig.vq->in_flight();
    while (rig.vq->detach_in_flight(&token))
        CHECK(detached.insert(token).second);
    CHECK(detached.size() == in_flight);
    CHECK(rig.vq->in_flight() == 0);
    CHECK(rig.vq->num_free() == rig.vq->size());
}

} // namespace

TEST_CASE("virtqueue: chains go out through the shared table and come back by token") {
    auto rig = QueueRig::make(8);
    CHECK(rig.vq->size() == 8);
    CHECK(rig.vq->num_free() == 8);
    CHECK(rig.vq->desc_addr() % 16 == 0);
    CHECK(rig.vq->avail_addr() == rig.vq->desc_addr() + 16 * 8);
    CHECK(rig.vq->used_addr() % 4 == 0);

    REQUIRE(add2(*rig.vq, 1, 100) == VirtioErr::none);
    const VirtqBuffer three[3] = {{0x1000, 16, false}, {0x2000, 4096, true}, {0x3000, 1, true}};
    REQUIRE(rig.vq->add(three, 3, reinterpret_cast<void*>(2)) == VirtioErr::none);
    CHECK(rig.vq->num_free() == 3);
    CHECK(rig.vq->in_flight() == 2);
    CHECK(rig.vq->needs_notify());
    CHECK_FALSE(rig.vq->needs_notify()); // nothing new since

    const int h1 = rig.pop();
    const int h2 = rig.pop();
    CHECK(rig.pop() == -1);
    REQUIRE(h1 >= 0);
    REQUIRE(h2 >= 0);
    auto c1 = rig.chain(static_cast<std::uint16_t>(h1));
    REQUIRE(c1.size() == 2);
    CHECK(c1[0].addr == 0x300000 + 0x1000);
    CHECK(c1[0].len == 16);
    CHECK(c1[0].flags == kVirtqDescFNext);
    CHECK(c1[1].len == 100);
    CHECK(c1[1].flags == kVirtqDescFWrite);
    auto c2 = rig.chain(static_cast<std::uint16_t>(h2));
    REQUIRE(c2.size() == 3);
    CHECK(c2[1].addr == 0x2000);
    CHECK(c2[2].flags == kVirtqDescFWrite);

    // Out of order, with lengths up to the writable bytes.
    void* token = nullptr;
    std::uint32_t len = 0;
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    rig.complete(static_cast<std::uint32_t>(h2), 4097);
    rig.complete(static_cast<std::uint32_t>(h1), 0);
    REQUIRE(rig.vq->get_used(&token, &len));
    CHECK(token == reinterpret_cast<void*>(2));
    CHECK(len == 4097);
    REQUIRE(rig.vq->get_used(&token, &len));
    CHECK(token == reinterpret_cast<void*>(1));
    CHECK(len == 0);
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    CHECK(rig.vq->num_free() == 8);
    CHECK(rig.vq->in_flight() == 0);
    CHECK_FALSE(rig.vq->broken());
    CHECK(rig.report.count() == 0);
}

TEST_CASE("virtqueue: indices wrap at 65536 with the queue full all the time") {
    auto rig = QueueRig::make(4);
    std::uint64_t completed = 0;
    std::uintptr_t next = 1;
    void* token = nullptr;
    std::uint32_t len = 0;
    while (completed < 70000) {
        while (add2(*rig.vq, next, 8) == VirtioErr::none)
            ++next;
        CHECK(rig.vq->num_free() == 0);
        for (int h = rig.pop(); h >= 0; h = rig.pop())
            rig.complete(static_cast<std::uint32_t>(h), 8);
        while (rig.vq->get_used(&token, &len))
            ++completed;
        REQUIRE(rig.vq->num_free() == 4);
    }
    CHECK_FALSE(rig.vq->broken());
}

TEST_CASE("virtqueue: refuses bad chains without touching the queue") {
    auto rig = QueueRig::make(4);
    const VirtqBuffer readable_after_writable[2] = {{0x1000, 8, true}, {0x2000, 8, false}};
    CHECK(rig.vq->add(readable_after_writable, 2, nullptr) == VirtioErr::bad_argument);
    const VirtqBuffer empty[1] = {{0x1000, 0, false}};
    CHECK(rig.vq->add(empty, 1, nullptr) == VirtioErr::bad_argument);
    const VirtqBuffer huge[2] = {{0x1000, 0xffffffffu, false}, {0x2000, 1, true}};
    CHECK(rig.vq->add(huge, 2, nullptr) == VirtioErr::bad_argument);
    VirtqBuffer five[5] = {};
    for (auto& b : five)
        b = {0x1000, 8, false};
    CHECK(rig.vq->add(five, 5, nullptr) == VirtioErr::bad_argument); // longer than the queue
    CHECK(rig.vq->add(five, 0, nullptr) == VirtioErr::bad_argument);
    CHECK(rig.vq->num_free() == 4);
    CHECK(rig.avail_idx() == 0);
    CHECK(add2(*rig.vq, 1) == VirtioErr::none);
    CHECK(rig.vq->add(five, 3, nullptr) == VirtioErr::queue_full);
    CHECK(rig.vq->num_free() == 2);
    CHECK(rig.avail_idx() == 1);
    CHECK_FALSE(rig.vq->broken());

    Virtqueue other;
    CHECK(other.init(&rig.dma, 0, 6, &rig.report, "x") == VirtioErr::bad_argument); // not 2^n
    CHECK(other.init(&rig.dma, 0, 512, &rig.report, "x") == VirtioErr::bad_argument);
    CHECK(other.init(&rig.dma, 0, 0, &rig.report, "x") == VirtioErr::bad_argument);
    CHECK_FALSE(other.ready());
}

TEST_CASE("virtqueue: the device's NO_NOTIFY hint is honoured") {
    auto rig = QueueRig::make(4);
    rig.used()->flags = kVirtqUsedFNoNotify;
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    CHECK_FALSE(rig.vq->needs_notify());
    rig.used()->flags = 0;
    REQUIRE(add2(*rig.vq, 2) == VirtioErr::none);
    CHECK(rig.vq->needs_notify());
}

TEST_CASE("virtqueue: EVENT_IDX: kicks exactly when the device's avail_event is crossed") {
    auto rig = QueueRig::make(16, true);
    CHECK(rig.vq->event_idx());
    // A sleeping device wants a kick for its next chain (avail_event 0).
    rig.set_avail_event(0);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    CHECK(rig.vq->needs_notify());
    // A busy device leaves avail_event behind: chains 1 and 2 do not cross it.
    REQUIRE(add2(*rig.vq, 2) == VirtioErr::none);
    REQUIRE(add2(*rig.vq, 3) == VirtioErr::none);
    CHECK_FALSE(rig.vq->needs_notify());
    // Going to sleep, it asks for chain 3: the next batch (3, 4) crosses it.
    rig.set_avail_event(3);
    REQUIRE(add2(*rig.vq, 4) == VirtioErr::none);
    REQUIRE(add2(*rig.vq, 5) == VirtioErr::none);
    CHECK(rig.vq->needs_notify());
    // ...and one event is one kick: the chain after it does not kick again.
    REQUIRE(add2(*rig.vq, 6) == VirtioErr::none);
    CHECK_FALSE(rig.vq->needs_notify());
    // The NO_NOTIFY flag means nothing with EVENT_IDX.
    rig.used()->flags = kVirtqUsedFNoNotify;
    rig.set_avail_event(6);
    REQUIRE(add2(*rig.vq, 7) == VirtioErr::none);
    CHECK(rig.vq->needs_notify());
    CHECK(rig.vq->bad_avail_events() == 0);
    CHECK_FALSE(rig.vq->broken());
}

TEST_CASE("virtqueue hostile: EVENT_IDX avail_event outside the possible window means notify") {
    auto rig = QueueRig::make(8, true);
    // avail_event ahead of every chain published (the device cannot wait
    // for a chain that does not exist yet), or more than the queue size
    // behind: each is a lie, and the answer is a kick, never silence.
    const std::uint16_t lies[] = {5, 100, 0x8000, 0xffff - 20};
    std::uintptr_t token = 1;
    for (std::uint16_t lie : lies) {
        rig.set_avail_event(lie);
        REQUIRE(add2(*rig.vq, token++) == VirtioErr::none);
        CHECK_MESSAGE(rig.vq->needs_notify(), "avail_event ", lie);
        round_trip(rig); // so the queue never fills
    }
    CHECK(rig.vq->bad_avail_events() == 4);
    CHECK_FALSE(rig.vq->broken()); // a hint, not a ring index: nothing to break
    // Past the wrap of the 16-bit index, a truthful value still works.
    for (int i = 0; i < 70000; ++i) {
        rig.set_avail_event(static_cast<std::uint16_t>(token - 1));
        REQUIRE(add2(*rig.vq, token++) == VirtioErr::none);
        REQUIRE(rig.vq->needs_notify());
        round_trip(rig);
    }
    CHECK(rig.vq->bad_avail_events() == 4);
}

TEST_CASE("virtqueue: EVENT_IDX: used_event asks for the n-th completion, flags stay 0") {
    auto rig = QueueRig::make(16, true);
    const auto avail_flags = [&] {
        return __atomic_load_n(&gpa_ptr<VirtqAvailHeader>(rig.vq->avail_addr())->flags,
                               __ATOMIC_ACQUIRE);
    };
    // Off from init: used_event half the index space away, flags 0 (the
    // specification's rule for EVENT_IDX).
    CHECK(avail_flags() == 0);
    CHECK(rig.used_event() == 0x8000);
    for (std::uintptr_t t = 1; t <= 6; ++t)
        REQUIRE(add2(*rig.vq, t) == VirtioErr::none);
    // Wake after the 3rd completion: used entry 2.
    CHECK(rig.vq->enable_interrupts(3));
    CHECK(rig.used_event() == 2);
    CHECK(avail_flags() == 0);
    // More than is in flight (or 0) would never come: it asks for the next one.
    CHECK(rig.vq->enable_interrupts(7));
    CHECK(rig.used_event() == 0);
    CHECK(rig.vq->enable_interrupts(0));
    CHECK(rig.used_event() == 0);
    // Two completions, consumed; then asking for 2 more means entry 3.
    for (int i = 0; i < 2; ++i) {
        const int head = rig.pop();
        REQUIRE(head >= 0);
        rig.complete(static_cast<std::uint32_t>(head), 512);
    }
    CHECK_FALSE(rig.vq->enable_interrupts(2)); // completions are waiting: no sleep
    void* t = nullptr;
    std::uint32_t len = 0;
    REQUIRE(rig.vq->get_used(&t, &len));
    REQUIRE(rig.vq->get_used(&t, &len));
    CHECK(rig.vq->enable_interrupts(2));
    CHECK(rig.used_event() == 3);
    rig.vq->disable_interrupts();
    CHECK(rig.used_event() == static_cast<std::uint16_t>(2 + 0x8000));
    CHECK(avail_flags() == 0);
}

TEST_CASE("virtqueue: used-buffer notifications are asked for only before sleeping") {
    auto rig = QueueRig::make(4);
    const auto avail_flags = [&] {
        return __atomic_load_n(&gpa_ptr<VirtqAvailHeader>(rig.vq->avail_addr())->flags,
                               __ATOMIC_ACQUIRE);
    };
    CHECK(avail_flags() == kVirtqAvailFNoInterrupt); // off from init
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    // Nothing completed: the driver may sleep, and the device is asked to wake it.
    CHECK(rig.vq->enable_interrupts());
    CHECK(avail_flags() == 0);
    rig.vq->disable_interrupts();
    CHECK(avail_flags() == kVirtqAvailFNoInterrupt);
    // A completion published before the driver asked: it must not sleep.
    REQUIRE(rig.pop() >= 0);
    rig.complete(0, 512);
    CHECK_FALSE(rig.vq->enable_interrupts());
    void* token = nullptr;
    std::uint32_t len = 0;
    REQUIRE(rig.vq->get_used(&token, &len));
    CHECK(token == reinterpret_cast<void*>(1));
    // Used idx moving impossibly while it looks: broken, and no sleeping either.
    rig.vq->disable_interrupts();
    REQUIRE(add2(*rig.vq, 2) == VirtioErr::none);
    rig.publish(static_cast<std::uint16_t>(rig.device_used + 3));
    CHECK_FALSE(rig.vq->enable_interrupts());
    expect_broken(rig, VirtioErr::used_idx, "used idx moved");
    CHECK_FALSE(rig.vq->enable_interrupts());
}

TEST_CASE("virtqueue hostile: used id out of range breaks the queue") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    REQUIRE(add2(*rig.vq, 2) == VirtioErr::none);
    rig.complete(8, 1);
    void* token = nullptr;
    std::uint32_t len = 0;
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_id_range, "used id 8 out of range (queue size 8)");
    CHECK(rig.console_text().find("virtio: test-device: queue 3") != std::string::npos);
}

TEST_CASE("virtqueue hostile: huge used id (sign and truncation games)") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    rig.complete(0x10000, 1); // truncated to 16 bits it would be 0, a real head
    void* token = nullptr;
    std::uint32_t len = 0;
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_id_range, "used id 65536 out of range");
}

TEST_CASE("virtqueue hostile: used id that was never made available") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    const int head = rig.pop();
    REQUIRE(head == 0);
    rig.complete(5, 1); // a free descriptor
    void* token = nullptr;
    std::uint32_t len = 0;
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_not_head, "used id 5 is not in flight");
}

TEST_CASE("virtqueue hostile: used id inside a chain, not its head") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    const int head = rig.pop();
    REQUIRE(head >= 0);
    const std::uint16_t body = rig.table()[head].next;
    rig.complete(body, 1);
    void* token = nullptr;
    std::uint32_t len = 0;
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_not_head, "is inside a chain, not its head");
}

TEST_CASE("virtqueue hostile: the same chain completed twice") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    REQUIRE(add2(*rig.vq, 2) == VirtioErr::none);
    const int h1 = rig.pop();
    REQUIRE(h1 >= 0);
    rig.complete(static_cast<std::uint32_t>(h1), 1);
    rig.complete(static_cast<std::uint32_t>(h1), 1);
    void* token = nullptr;
    std::uint32_t len = 0;
    REQUIRE(rig.vq->get_used(&token, &len));
    CHECK(token == reinterpret_cast<void*>(1));
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_twice, "completed twice");
}

TEST_CASE("virtqueue hostile: used len beyond the chain's writable bytes") {
    void* token = nullptr;
    std::uint32_t len = 0;
    {
        auto rig = QueueRig::make(8);
        REQUIRE(add2(*rig.vq, 1, 512) == VirtioErr::none);
        const int head = rig.pop();
        REQUIRE(head >= 0);
        rig.complete(static_cast<std::uint32_t>(head), 513); // readable bytes do not count
        CHECK_FALSE(rig.vq->get_used(&token, &len));
        expect_broken(rig, VirtioErr::used_len, "used len 513 for chain 0 exceeds its 512");
    }
    {
        auto rig = QueueRig::make(8);
        REQUIRE(add2(*rig.vq, 1, 512) == VirtioErr::none);
        rig.complete(0, 0xffffffffu);
        CHECK_FALSE(rig.vq->get_used(&token, &len));
        expect_broken(rig, VirtioErr::used_len, "used len 4294967295");
    }
}

TEST_CASE("virtqueue hostile: used idx jumping by more than the queue size") {
    auto rig = QueueRig::make(8);
    for (std::uintptr_t t = 1; t <= 4; ++t)
        REQUIRE(add2(*rig.vq, t) == VirtioErr::none);
    rig.publish(9); // Q + 1 completions at once
    void* token = nullptr;
    std::uint32_t len = 0;
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_idx, "used idx moved from 0 to 9");
}

TEST_CASE("virtqueue hostile: used idx ahead of the chains in flight (within the queue size)") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    REQUIRE(add2(*rig.vq, 2) == VirtioErr::none);
    rig.write_used(0, 0, 1);
    rig.write_used(1, 2, 1);
    rig.write_used(2, 0, 1); // stale entry the device hopes the driver reuses
    rig.publish(3);
    CHECK_FALSE(rig.vq->has_used());
    expect_broken(rig, VirtioErr::used_idx, "3 completions with 2 chains in flight");
}

TEST_CASE("virtqueue hostile: used idx moving backwards") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    REQUIRE(add2(*rig.vq, 2) == VirtioErr::none);
    rig.pop();
    rig.complete(0, 1);
    void* token = nullptr;
    std::uint32_t len = 0;
    REQUIRE(rig.vq->get_used(&token, &len));
    rig.publish(0); // takes the completion back
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_idx, "used idx moved from 1 to 0");
}

TEST_CASE("virtqueue hostile: a device rewriting the shared table cannot corrupt the free list") {
    auto rig = QueueRig::make(8);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none);
    const VirtqBuffer three[3] = {{0x1000, 16, false}, {0x2000, 64, true}, {0x3000, 1, true}};
    REQUIRE(rig.vq->add(three, 3, reinterpret_cast<void*>(2)) == VirtioErr::none);
    const int h1 = rig.pop();
    const int h2 = rig.pop();
    REQUIRE(h1 >= 0);
    REQUIRE(h2 >= 0);
    // The device turns every descriptor into a loop onto chain 1's head with
    // enormous writable lengths, and points chain 2 into chain 1.
    for (std::uint16_t i = 0; i < 8; ++i)
        rig.table()[i] = VirtqDesc{0xdead0000, 0x7fffffff, kVirtqDescFNext | kVirtqDescFWrite,
                                   static_cast<std::uint16_t>(h1)};
    // Lengths are checked against what the driver made writable, not the table.
    rig.complete(static_cast<std::uint32_t>(h2), 65);
    rig.complete(static_cast<std::uint32_t>(h1), 512);
    void* token = nullptr;
    std::uint32_t len = 0;
    REQUIRE(rig.vq->get_used(&token, &len));
    CHECK(token == reinterpret_cast<void*>(2));
    REQUIRE(rig.vq->get_used(&token, &len));
    CHECK(token == reinterpret_cast<void*>(1));
    CHECK(rig.vq->num_free() == 8);
    CHECK_FALSE(rig.vq->broken());

    // The free list is whole: all 8 descriptors go out again, each once, and
    // the table is rewritten from the private copy.
    std::set<std::uint16_t> seen;
    for (std::uintptr_t t = 10; t < 14; ++t)
        REQUIRE(add2(*rig.vq, t, 32) == VirtioErr::none);
    CHECK(rig.vq->num_free() == 0);
    for (int h = rig.pop(); h >= 0; h = rig.pop()) {
        auto c = rig.chain(static_cast<std::uint16_t>(h));
        REQUIRE(c.size() == 2);
        CHECK(c[0].flags == kVirtqDescFNext);
        CHECK(c[0].len == 16);
        CHECK(c[1].flags == kVirtqDescFWrite);
        CHECK(c[1].len == 32);
        CHECK(seen.insert(static_cast<std::uint16_t>(h)).second);
        CHECK(seen.insert(rig.table()[h].next).second);
    }
    CHECK(seen.size() == 8);
}

TEST_CASE("virtqueue hostile: a chain completed after it was freed and reused elsewhere") {
    auto rig = QueueRig::make(4);
    REQUIRE(add2(*rig.vq, 1) == VirtioErr::none); // descriptors 0, 1
    rig.pop();
    rig.complete(0, 1);
    void* token = nullptr;
    std::uint32_t len = 0;
    REQUIRE(rig.vq->get_used(&token, &len));
    // Free list is now 0 -> 1 -> 2 -> 3; a 3-buffer chain takes 0, 1, 2.
    const VirtqBuffer three[3] = {{0x1000, 16, false}, {0x2000, 64, true}, {0x3000, 1, true}};
    REQUIRE(rig.vq->add(three, 3, reinterpret_cast<void*>(2)) == VirtioErr::none);
    rig.complete(1, 1); // descriptor 1 now sits inside the chain headed by 0
    CHECK_FALSE(rig.vq->get_used(&token, &len));
    expect_broken(rig, VirtioErr::used_not_head, "used id 1 is inside a chain");
}
