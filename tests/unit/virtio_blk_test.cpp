// The virtio-blk driver and the virtio-mmio transport (guest/virtio_blk.cpp,
// guest/virtio_mmio.cpp) against a virtio-mmio v2 block device played by the
// test (virtio_device_model.hpp): registers through the MMIO hypercalls, rings
// and buffers in guest RAM, an in-memory disk. Happy paths, then every way a
// hostile device can misbehave: each must end with the request failed, the
// queue broken where the ring was abused, the device set FAILED, a message on
// the console, and no private memory touched.
#include "guest/swiotlb.h"
#include "guest/virtio_blk.h"
#include "guest/zalloc.h"
#include "virtio_device_model.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace svmkit;
using namespace svmkit::guest;
using test::ModelChain;
using test::VirtioBlkModel;

namespace {

constexpr std::uint64_t kRam = 8u << 20;
constexpr std::uint64_t kArena = 0x10000;    // coherent memory (rings), 1 MiB
constexpr std::uint64_t kBuffers = 0x200000; // private request buffers, below kPool
constexpr std::uint64_t kPool = 4u << 20;    // the bounce pool of restricted rigs
constexpr std::uint64_t kCanary = 0x1000;    // guard bytes around each buffer
constexpr std::uint8_t kCanaryByte = 0xa5;

// Guest RAM, the device, the driver stack on a direct DmaDevice, or on a
// restricted one bouncing through a swiotlb pool at kPool.
struct BlkRig {
    platform::GuestMemory memory;
    VirtioBlkModel model;
    svmkit_gates gates = VirtioBlkModel::gates();
    Calls calls{&gates};
    Console console{calls};
    VirtioReport report{&console};
    BumpArena arena{gpa_ptr(kArena), 0x100000, 0};
    std::vector<std::uint8_t> pool_metadata; // private bookkeeping of the pool
    Swiotlb pool;
    DmaDevice dma;
    VirtioMmio mmio{&calls, test::kModelMmioBase, test::kModelMmioSize, &report};
    std::unique_ptr<VirtioBlk> blk;
    std::uint64_t next_buffer = kBuffers;

    BlkRig(platform::GuestMemory m, std::uint64_t pool_bytes)
        : memory(std::move(m)), model(memory) {
        if (pool_bytes == 0) {
            dma = DmaDevice::direct(&arena);
        } else {
            const std::uint64_t meta = Swiotlb::metadata_bytes(Swiotlb::slots_in(pool_bytes), 1);
            pool_metadata.resize(meta + Swiotlb::kMetadataAlign);
            const auto addr = reinterpret_cast<std::uintptr_t>(pool_metadata.data());
            void* aligned =
                pool_metadata.data() + (Swiotlb::kMetadataAlign - addr % Swiotlb::kMetadataAlign) %
                                           Swiotlb::kMetadataAlign;
            REQUIRE(pool.init(Range{kPool, pool_bytes}, 1, aligned, meta) ==
                    Swiotlb::InitError::none);
            dma = DmaDevice::restricted(&pool);
            model.dma_window_base = kPool;
            model.dma_window_size = pool_bytes;
        }
        blk = std::make_unique<VirtioBlk>(&mmio, &dma, &report);
    }

    // `pool_bytes` 0: direct DMA; otherwise a restricted device with a pool of
    // that size.
    static std::unique_ptr<BlkRig> make(std::uint64_t pool_bytes = 0) {
        auto m = platform::GuestMemory::create(kRam);
        REQUIRE_MESSAGE(m.has_value(), m.error().message);
        return std::make_unique<BlkRig>(std::move(*m), pool_bytes);
    }

    // A private buffer in guest RAM between two canary zones.
    std::uint8_t* tracked(std::size_t bytes, std::uint8_t fill = 0) {
        const std::uint64_t rounded = (bytes + 0xfff) & ~std::uint64_t{0xfff};
        std::memset(gpa_ptr(next_buffer), kCanaryByte, kCanary + rounded + kCanary);
        std::uint8_t* p = gpa_ptr(next_buffer + kCanary);
        std::memset(p, fill, bytes);
        owned_.emplace_back(next_buffer + kCanary, bytes);
        next_buffer += kCanary + rounded + kCanary;
        return p;
    }
    // Every byte around and between the buffers still holds the canary.
    bool canaries_intact() const {
        std::uint64_t at = kBuffers;
        for (const auto& [base, bytes] : owned_) {
            for (; at < base; ++at)
                if (*gpa_ptr(at) != kCanaryByte)
                    return false;
            at = base + bytes;
        }
        for (; at < next_buffer; ++at)
            if (*gpa_ptr(at) != kCanaryByte)
                return false;
        return true;
    }
    const std::uint8_t* disk(std::uint64_t sector) const {
        return model.disk.data() + sector * 512;
    }
    std::string message() const { return report.message(); }

  private:
    std::vector<std::pair<std::uint64_t, std::size_t>> owned_;
};

bool has(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

BlkRequest read_req(std::uint64_t sector, std::uint8_t* buf, std::uint32_t bytes) {
    BlkRequest r;
    r.op = BlkOp::read;
    r.sector = sector;
    r.data = buf;
    r.bytes = bytes;
    return r;
}

} // namespace

TEST_CASE("virtio-blk: probe, status handshake, negotiation and queue setup") {
    auto rig = BlkRig::make();
    rig->model.offered |= virtio_bit(kVirtioFIndirectDesc) | virtio_bit(kVirtioFEventIdx) |
                          virtio_bit(kVirtioFRingPacked) | virtio_bit(kVirtioFInOrder) |
                          virtio_bit(kVirtioFOrderPlatform) | virtio_bit(kVirtioFRingReset);
    REQUIRE(rig->blk->init() == VirtioErr::none);
    const std::vector<std::uint32_t> expected = {
        0, kVirtioStatusAcknowledge, kVirtioStatusAcknowledge | kVirtioStatusDriver,
        kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk,
        kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusFeaturesOk |
            kVirtioStatusDriverOk};
    CHECK(rig->model.status_writes == expected);
    // Only what the driver understands; never indirect, packed, in-order...
    CHECK(rig->model.driver_features ==
          (virtio_bit(kVirtioFVersion1) | virtio_bit(kVirtioFAccessPlatform) |
           virtio_bit(kVirtioBlkFFlush) | virtio_bit(kVirtioBlkFBlkSize) |
           virtio_bit(kVirtioFEventIdx)));
    CHECK(rig->blk->queue().event_idx());
    CHECK(rig->mmio.features() == rig->model.driver_features);
    CHECK(rig->model.queue_ready);
    CHECK(rig->model.queue_num == 64);
    CHECK(rig->model.desc_addr == rig->blk->queue().desc_addr());
    CHECK(rig->model.avail_addr == rig->blk->queue().avail_addr());
    CHECK(rig->model.used_addr == rig->blk->queue().used_addr());
    CHECK(rig->model.bad_accesses == 0);
    CHECK(rig->blk->capacity() == 2048);
    CHECK(rig->blk->has_flush());
    CHECK_FALSE(rig->blk->read_only());
    CHECK(rig->blk->max_request_bytes() == kBlkMaxSegments * kBlkMaxSegmentBytes);
    CHECK(std::string(rig->mmio.name()) == "virtio-mmio@0x100000000000");
    CHECK(rig->report.count() == 0);
}

TEST_CASE("virtio-blk: read, write, flush and get-id round trips") {
    auto rig = BlkRig::make();
    REQUIRE(rig->blk->init() == VirtioErr::none);

    std::uint8_t* in = rig->tracked(8192);
    REQUIRE(rig->blk->read(10, in, 8192) == VirtioErr::none);
    CHECK(std::memcmp(in, rig->disk(10), 8192) == 0);

    std::uint8_t* out = rig->tracked(4096, 0x5c);
    REQUIRE(rig->blk->write(100, out, 4096) == VirtioErr::none);
    CHECK(std::memcmp(rig->disk(100), out, 4096) == 0);
    std::uint8_t* back = rig->tracked(4096);
    REQUIRE(rig->blk->read(100, back, 4096) == VirtioErr::none);
    CHECK(std::memcmp(back, out, 4096) == 0);

    REQUIRE(rig->blk->flush() == VirtioErr::none);
    CHECK(rig->model.flushes == 1);

    auto* id = reinterpret_cast<char*>(rig->tracked(kVirtioBlkIdBytes + 1));
    REQUIRE(rig->blk->get_id(id) == VirtioErr::none);
    CHECK(std::string(id) == "svmkit-test-disk");
    CHECK(rig->canaries_intact());
    CHECK(rig->model.bad_accesses == 0);
}

TEST_CASE("virtio-blk: get-id of exactly 20 bytes, unprintable bytes replaced") {
    auto rig = BlkRig::make();
    rig->model.id = std::string("0123456789abcdef\x01\x7f\xff") + "Z";
    REQUIRE(rig->blk->init() == VirtioErr::none);
    auto* id = reinterpret_cast<char*>(rig->tracked(kVirtioBlkIdBytes + 1, 'x'));
    REQUIRE(rig->blk->get_id(id) == VirtioErr::none);
    CHECK(std::string(id) == "0123456789abcdef???Z");
    rig->model.forced_status = kVirtioBlkSUnsupp;
    CHECK(rig->blk->get_id(id) == VirtioErr::unsupported);
    CHECK(std::string(id).empty());
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk: several requests in flight, completed out of order, one notification") {
    auto rig = BlkRig::make();
    rig->model.completion = VirtioBlkModel::Completion::on_cede;
    rig->model.reverse_order = true;
    REQUIRE(rig->blk->init() == VirtioErr::none);

    constexpr int kN = 12;
    BlkRequest reqs[kN];
    std::uint8_t* bufs[kN];
    for (int i = 0; i < kN; ++i) {
        bufs[i] = rig->tracked(4096);
        reqs[i] = read_req(static_cast<std::uint64_t>(i) * 16, bufs[i], 4096);
    }
    CHECK(rig->blk->submit(reqs, kN) == VirtioErr::none);
    CHECK(rig->model.notifies == 1);
    CHECK(rig->model.outstanding.size() == kN); // all in flight at once
    CHECK(rig->blk->queue().in_flight() == kN);
    rig->blk->wait_all();
    for (int i = 0; i < kN; ++i) {
        CHECK(reqs[i].done);
        CHECK(reqs[i].result == VirtioErr::none);
        CHECK(std::memcmp(bufs[i], rig->disk(static_cast<std::uint64_t>(i) * 16), 4096) == 0);
    }
    CHECK(rig->model.max_outstanding == kN);
    // The driver idled and acknowledged the used-buffer interrupt; it asked
    // for interrupts while it slept and for none once awake again.
    CHECK(rig->model.cedes >= 1);
    CHECK(rig->model.acks >= 1);
    CHECK(rig->model.interrupt_status == 0);
    CHECK(rig->model.cedes_with_interrupts_off == 0);
    CHECK((gpa_ptr<VirtqAvailHeader>(rig->blk->queue().avail_addr())->flags &
           kVirtqAvailFNoInterrupt) != 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk: large transfers split by size_max and seg_max, across batches") {
    auto rig = BlkRig::make();
    rig->model.offered |= virtio_bit(kVirtioBlkFSizeMax) | virtio_bit(kVirtioBlkFSegMax);
    rig->model.size_max = 4096 + 100; // rounded down to whole sectors
    rig->model.seg_max = 4;
    rig->model.completion = VirtioBlkModel::Completion::on_cede;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    CHECK(rig->blk->max_request_bytes() == 4 * 4096);

    const std::size_t all = rig->model.disk.size(); // 1 MiB: 64 requests
    std::uint8_t* buf = rig->tracked(all);
    REQUIRE(rig->blk->read(0, buf, all) == VirtioErr::none);
    CHECK(std::memcmp(buf, rig->disk(0), all) == 0);
    CHECK(rig->model.max_outstanding == kBlkSyncDepth);

    for (std::size_t i = 0; i < all; ++i)
        buf[i] = static_cast<std::uint8_t>(~buf[i]);
    REQUIRE(rig->blk->write(0, buf, all) == VirtioErr::none);
    CHECK(std::memcmp(buf, rig->disk(0), all) == 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk: a full queue makes submit wait for completions") {
    auto rig = BlkRig::make();
    rig->model.queue_num_max = 4; // one 3-descriptor request at a time
    rig->model.completion = VirtioBlkModel::Completion::on_cede;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    CHECK(rig->model.queue_num == 4);
    BlkRequest reqs[5];
    std::uint8_t* bufs[5];
    for (int i = 0; i < 5; ++i) {
        bufs[i] = rig->tracked(512);
        reqs[i] = read_req(static_cast<std::uint64_t>(i), bufs[i], 512);
    }
    CHECK(rig->blk->submit(reqs, 5) == VirtioErr::none);
    rig->blk->wait_all();
    for (int i = 0; i < 5; ++i) {
        CHECK(reqs[i].result == VirtioErr::none);
        CHECK(std::memcmp(bufs[i], rig->disk(static_cast<std::uint64_t>(i)), 512) == 0);
    }
    CHECK(rig->model.max_outstanding == 1);
}

TEST_CASE("virtio-blk: queue sizes follow the device's maximum") {
    {
        auto rig = BlkRig::make();
        rig->model.queue_num_max = 1000; // not a power of two, above our maximum
        REQUIRE(rig->blk->init() == VirtioErr::none);
        CHECK(rig->model.queue_num == kVirtqMaxSize);
    }
    {
        auto rig = BlkRig::make();
        rig->model.queue_num_max = 3;
        CHECK(rig->blk->init() == VirtioErr::device_failed);
        CHECK(has(rig->message(), "queue size 3 is unusable"));
        CHECK((rig->model.status & kVirtioStatusFailed) != 0);
    }
    {
        auto rig = BlkRig::make();
        rig->model.queue_num_max = 0;
        CHECK(rig->blk->init() == VirtioErr::queue_unavailable);
        CHECK(has(rig->message(), "queue 0 does not exist"));
        CHECK((rig->model.status & kVirtioStatusFailed) != 0);
    }
}

TEST_CASE("virtio-blk: device answers: IOERR, UNSUPP, undefined and missing status") {
    auto rig = BlkRig::make();
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::uint8_t* buf = rig->tracked(512, 0x77);

    rig->model.forced_status = kVirtioBlkSIoErr;
    CHECK(rig->blk->read(0, buf, 512) == VirtioErr::io_error);
    CHECK(buf[0] == 0); // a failed read hands out no device bytes
    CHECK(std::memcmp(buf, std::vector<std::uint8_t>(512, 0).data(), 512) == 0);

    rig->model.forced_status = kVirtioBlkSUnsupp;
    CHECK(rig->blk->flush() == VirtioErr::unsupported);

    rig->model.forced_status = 7;
    CHECK(rig->blk->read(0, buf, 512) == VirtioErr::bad_status);
    CHECK(rig->report.code() == VirtioErr::bad_status);
    CHECK(has(rig->message(), "undefined status 7"));

    rig->model.forced_status = -2;
    CHECK(rig->blk->write(0, buf, 512) == VirtioErr::bad_status);
    CHECK(has(rig->message(), "without writing its status"));
    CHECK(has(rig->model.console, "virtio: virtio-mmio@0x100000000000: device completed"));

    // Request-level failures leave the queue healthy.
    rig->model.forced_status = -1;
    CHECK_FALSE(rig->blk->broken());
    CHECK(rig->blk->read(3, buf, 512) == VirtioErr::none);
    CHECK(std::memcmp(buf, rig->disk(3), 512) == 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk: requests the driver refuses itself") {
    auto rig = BlkRig::make();
    rig->model.offered |= virtio_bit(kVirtioBlkFRo);
    rig->model.offered &= ~virtio_bit(kVirtioBlkFFlush);
    REQUIRE(rig->blk->init() == VirtioErr::none);
    CHECK(rig->blk->read_only());
    std::uint8_t* buf = rig->tracked(1024);
    CHECK(rig->blk->write(0, buf, 512) == VirtioErr::read_only);
    CHECK(rig->blk->read(2047, buf, 1024) == VirtioErr::out_of_range);
    CHECK(rig->blk->read(~0ull, buf, 512) == VirtioErr::out_of_range);
    CHECK(rig->blk->read(0, buf, 100) == VirtioErr::bad_argument);
    CHECK(rig->blk->read(0, nullptr, 512) == VirtioErr::bad_argument);
    BlkRequest too_big = read_req(0, buf, rig->blk->max_request_bytes() + 512);
    CHECK(rig->blk->submit(&too_big, 1) == VirtioErr::bad_argument);
    CHECK(too_big.done);
    BlkRequest never;
    CHECK(rig->blk->wait(never) == VirtioErr::bad_argument); // not submitted: no hang
    // Without VIRTIO_BLK_F_FLUSH the device is write-through: nothing to send.
    CHECK(rig->blk->flush() == VirtioErr::none);
    CHECK(rig->model.notifies == 0);
    CHECK(rig->model.flushes == 0);
}

TEST_CASE("virtio-blk: refuses devices without VERSION_1 or ACCESS_PLATFORM, clearly") {
    struct Case {
        std::uint64_t drop;
        const char* words;
    };
    for (const Case c : {Case{virtio_bit(kVirtioFVersion1), "lacks VIRTIO_F_VERSION_1"},
                         Case{virtio_bit(kVirtioFAccessPlatform),
                              "lacks VIRTIO_F_ACCESS_PLATFORM (feature bit 33"}}) {
        CAPTURE(c.words);
        auto rig = BlkRig::make();
        rig->model.offered &= ~c.drop;
        CHECK(rig->blk->init() == VirtioErr::missing_feature);
        CHECK(rig->report.code() == VirtioErr::missing_feature);
        CHECK_MESSAGE(has(rig->message(), c.words), rig->message());
        CHECK(has(rig->message(), "device refused"));
        CHECK(has(rig->model.console, c.words));
        CHECK((rig->model.status & kVirtioStatusFailed) != 0);
        CHECK((rig->model.status & kVirtioStatusFeaturesOk) == 0);
        CHECK(rig->model.driver_features == 0);
        CHECK_FALSE(rig->model.queue_ready);
        std::uint8_t* buf = rig->tracked(512);
        CHECK(rig->blk->read(0, buf, 512) == VirtioErr::device_failed);
        CHECK(rig->model.notifies == 0);
    }
}

TEST_CASE("virtio-blk: probe failures: magic, version, device id, transport, features") {
    {
        auto rig = BlkRig::make();
        rig->model.magic = 0x12345678;
        CHECK(rig->blk->init() == VirtioErr::not_virtio);
        CHECK(has(rig->message(), "magic value 0x12345678"));
        CHECK(rig->model.status_writes.empty()); // nothing written to a non-virtio window
    }
    {
        auto rig = BlkRig::make();
        rig->model.version = 1;
        CHECK(rig->blk->init() == VirtioErr::bad_version);
        CHECK(has(rig->message(), "virtio-mmio version 1 is not supported"));
    }
    {
        auto rig = BlkRig::make();
        rig->model.device_id = 0;
        CHECK(rig->blk->init() == VirtioErr::wrong_device);
        CHECK(has(rig->message(), "device id 0 (no device), expected 2"));
    }
    {
        auto rig = BlkRig::make();
        rig->model.device_id = kVirtioIdConsole;
        CHECK(rig->blk->init() == VirtioErr::wrong_device);
    }
    {
        auto rig = BlkRig::make();
        rig->model.unplugged = true;
        CHECK(rig->blk->init() == VirtioErr::transport);
        CHECK(has(rig->message(), "register access failed (MagicValue"));
    }
    {
        auto rig = BlkRig::make();
        rig->model.reject_features = true;
        CHECK(rig->blk->init() == VirtioErr::features_rejected);
        CHECK((rig->model.status & kVirtioStatusFailed) != 0);
    }
    {
        auto rig = BlkRig::make();
        rig->model.generation_churns = true;
        CHECK(rig->blk->init() == VirtioErr::device_failed);
        CHECK(has(rig->message(), "kept changing"));
        CHECK((rig->model.status & kVirtioStatusFailed) != 0);
    }
    {
        auto rig = BlkRig::make();
        rig->model.offered |= virtio_bit(kVirtioBlkFSegMax);
        rig->model.seg_max = 0;
        CHECK(rig->blk->init() == VirtioErr::device_failed);
        CHECK(has(rig->message(), "seg_max 0 is unusable"));
    }
    {
        auto rig = BlkRig::make();
        rig->model.offered |= virtio_bit(kVirtioBlkFSizeMax);
        rig->model.size_max = 511;
        CHECK(rig->blk->init() == VirtioErr::device_failed);
        CHECK(has(rig->message(), "size_max 511 is unusable"));
    }
}

TEST_CASE("virtio-mmio: refused ring features stay off whatever a driver asks for") {
    auto rig = BlkRig::make();
    rig->model.offered = ~std::uint64_t{0}; // everything
    REQUIRE(rig->mmio.probe(kVirtioIdBlock) == VirtioErr::none);
    REQUIRE(rig->mmio.negotiate(0, ~std::uint64_t{0}) == VirtioErr::none);
    CHECK((rig->model.driver_features & kVirtioRefusedFeatures) == 0);
    CHECK(rig->model.driver_features == (~std::uint64_t{0} & ~kVirtioRefusedFeatures));
    CHECK(rig->mmio.has_feature(kVirtioFAccessPlatform));
    CHECK_FALSE(rig->mmio.has_feature(kVirtioFIndirectDesc));
    CHECK_FALSE(rig->mmio.has_feature(kVirtioFRingPacked));
}

TEST_CASE("virtio-mmio: configuration reads use the widths virtio-mmio allows") {
    auto rig = BlkRig::make();
    REQUIRE(rig->mmio.probe(kVirtioIdBlock) == VirtioErr::none);
    std::uint64_t v = 0;
    REQUIRE(rig->mmio.config_read(kVirtioBlkCfgCapacity, 8, &v) == VirtioErr::none);
    CHECK(v == 2048); // two 32-bit halves: the model refuses 8-byte accesses
    REQUIRE(rig->mmio.config_read(kVirtioBlkCfgBlkSize, 4, &v) == VirtioErr::none);
    CHECK(v == 512);
    REQUIRE(rig->mmio.config_read(kVirtioBlkCfgBlkSize + 1, 1, &v) == VirtioErr::none);
    CHECK(v == 2);
    REQUIRE(rig->mmio.config_read(kVirtioBlkCfgBlkSize, 2, &v) == VirtioErr::none);
    CHECK(v == 512);
    CHECK(rig->model.bad_accesses == 0);
    CHECK(rig->mmio.config_read(1, 2, &v) == VirtioErr::bad_argument);    // misaligned
    CHECK(rig->mmio.config_read(0, 3, &v) == VirtioErr::bad_argument);    // no such width
    CHECK(rig->mmio.config_read(0xfc, 8, &v) == VirtioErr::bad_argument); // past the window
    CHECK_FALSE(rig->mmio.transport_failed());
}

namespace {

// A hostile ring case: the device collects `count` reads, then `forge` writes
// the used ring; the driver must fail every request and give up on the device.
void hostile_ring(int count, const std::function<void(VirtioBlkModel&)>& forge, VirtioErr why,
                  const char* words) {
    auto rig = BlkRig::make();
    rig->model.completion = VirtioBlkModel::Completion::manual;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::vector<BlkRequest> reqs(static_cast<std::size_t>(count));
    std::vector<std::uint8_t*> bufs;
    for (int i = 0; i < count; ++i) {
        bufs.push_back(rig->tracked(4096, 0x33));
        reqs[static_cast<std::size_t>(i)] =
            read_req(static_cast<std::uint64_t>(i) * 8, bufs.back(), 4096);
    }
    REQUIRE(rig->blk->submit(reqs.data(), reqs.size()) == VirtioErr::none);
    REQUIRE(rig->model.outstanding.size() == static_cast<std::size_t>(count));
    // The device fills the buffers (direct DMA) before misbehaving.
    for (auto* b : bufs)
        std::memset(b, 0xee, 4096);
    forge(rig->model);
    rig->blk->poll();

    CHECK(rig->blk->broken());
    CHECK(rig->blk->queue().broken_reason() == why);
    CHECK_MESSAGE(has(rig->model.console, words), rig->model.console);
    CHECK(has(rig->model.console, "marked broken"));
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        CAPTURE(i);
        CHECK(reqs[i].done);
        if (reqs[i].result != VirtioErr::none) {
            CHECK(reqs[i].result == VirtioErr::queue_broken);
            CHECK(std::memcmp(bufs[i], std::vector<std::uint8_t>(4096, 0).data(), 4096) == 0);
        }
    }
    CHECK(rig->blk->queue().in_flight() == 0);
    // The driver gave up on the device: reset, then FAILED.
    CHECK(rig->model.resets >= 2);
    CHECK(rig->model.status == kVirtioStatusFailed);
    // Later requests fail at once, without touching the device.
    const unsigned notifies = rig->model.notifies;
    std::uint8_t* more = rig->tracked(512);
    CHECK(rig->blk->read(0, more, 512) == VirtioErr::queue_broken);
    CHECK(rig->model.notifies == notifies);
    CHECK(rig->canaries_intact());
}

} // namespace

TEST_CASE("virtio-blk: stage statistics count what the driver did, and only while on") {
    auto rig = BlkRig::make(1u << 20);
    rig->model.completion = VirtioBlkModel::Completion::on_cede;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::uint8_t* buf = rig->tracked(64 * 1024);

    BlkStats stats;
    rig->blk->set_stats(&stats);
    BlkRequest reqs[4];
    for (int i = 0; i < 4; ++i)
        reqs[i] = read_req(static_cast<std::uint64_t>(i) * 32, buf + i * 16384, 16384);
    const unsigned notifies = rig->model.notifies;
    const unsigned cedes = rig->model.cedes;
    REQUIRE(rig->blk->submit(reqs, 4) == VirtioErr::none);
    rig->blk->wait_all();
    CHECK(stats.completed == 4);
    CHECK(stats.kicks == rig->model.notifies - notifies);
    CHECK(stats.cedes == rig->model.cedes - cedes);
    CHECK(stats.cedes >= 1);
    CHECK(stats.in_flight_at_cede == 4 * stats.cedes); // all four slept on together
    // Every stage the requests went through took time; the bounce copies
    // are their own stages, not part of submitting or reaping.
    for (unsigned s = 0; s < BlkStats::kStages; ++s)
        CHECK_MESSAGE(stats.ticks[s] > 0, "stage ", s);

    rig->blk->set_stats(nullptr);
    const BlkStats before = stats;
    REQUIRE(rig->blk->read(0, buf, 4096) == VirtioErr::none);
    CHECK(stats.completed == before.completed);
    CHECK(stats.cedes == before.cedes);
    CHECK(std::memcmp(stats.ticks, before.ticks, sizeof stats.ticks) == 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk: EVENT_IDX: sleeps until half of what is in flight completed, never "
          "past the last") {
    auto rig = BlkRig::make(1u << 20);
    rig->model.offered |= virtio_bit(kVirtioFEventIdx);
    rig->model.completion = VirtioBlkModel::Completion::on_cede;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    REQUIRE(rig->blk->queue().event_idx());

    constexpr int kN = 8;
    BlkRequest reqs[kN];
    std::uint8_t* bufs[kN];
    for (int i = 0; i < kN; ++i) {
        bufs[i] = rig->tracked(4096);
        reqs[i] = read_req(static_cast<std::uint64_t>(i) * 8, bufs[i], 4096);
    }
    CHECK(rig->blk->submit(reqs, kN) == VirtioErr::none);
    rig->blk->wait_all();
    for (int i = 0; i < kN; ++i) {
        CHECK(reqs[i].result == VirtioErr::none);
        CHECK(std::memcmp(bufs[i], rig->disk(static_cast<std::uint64_t>(i) * 8), 4096) == 0);
    }
    // Asleep with 8 in flight, it asked to be woken at the 4th completion.
    REQUIRE_FALSE(rig->model.used_event_at_cede.empty());
    CHECK(rig->model.used_event_at_cede.front() == kN / 2);
    CHECK(rig->model.cedes_unreachable_event == 0);
    // The flags are not the hint with EVENT_IDX: left 0 (the specification's rule).
    CHECK(gpa_ptr<VirtqAvailHeader>(rig->blk->queue().avail_addr())->flags == 0);

    // One request at a time: the next completion, every time.
    rig->model.used_event_at_cede.clear();
    for (int i = 0; i < 3; ++i)
        REQUIRE(rig->blk->read(static_cast<std::uint64_t>(i), bufs[0], 4096) == VirtioErr::none);
    REQUIRE_FALSE(rig->model.used_event_at_cede.empty());
    for (std::uint16_t ahead : rig->model.used_event_at_cede)
        CHECK(ahead == 1);
    CHECK(rig->model.cedes_unreachable_event == 0);
    CHECK(rig->blk->queue().bad_avail_events() == 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk hostile: EVENT_IDX avail_event lies cost kicks, never requests") {
    auto rig = BlkRig::make(1u << 20);
    rig->model.offered |= virtio_bit(kVirtioFEventIdx);
    rig->model.completion = VirtioBlkModel::Completion::on_cede;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::uint8_t* buf = rig->tracked(8192);
    // A device claiming to wait for a chain far ahead of anything published
    // (it would never be kicked again if the driver believed it), then one
    // far behind.
    for (std::uint16_t lie : {std::uint16_t{0x4000}, std::uint16_t{0xc000}}) {
        rig->model.forced_avail_event = lie;
        const unsigned notifies = rig->model.notifies;
        for (int i = 0; i < 4; ++i) {
            REQUIRE(rig->blk->read(static_cast<std::uint64_t>(i) * 16, buf, 8192) ==
                    VirtioErr::none);
            CHECK(std::memcmp(buf, rig->disk(static_cast<std::uint64_t>(i) * 16), 8192) == 0);
        }
        CHECK(rig->model.notifies - notifies == 4); // each submission kicked
    }
    CHECK(rig->blk->queue().bad_avail_events() == 7); // the first read saw a truthful 0
    CHECK_FALSE(rig->blk->broken());
    CHECK(rig->model.cedes_unreachable_event == 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk hostile: used id out of range") {
    hostile_ring(
        3, [](VirtioBlkModel& m) { m.push_used(64, 1); }, VirtioErr::used_id_range,
        "used id 64 out of range (queue size 64)");
}

TEST_CASE("virtio-blk hostile: used id not in flight") {
    hostile_ring(
        2, [](VirtioBlkModel& m) { m.push_used(50, 1); }, VirtioErr::used_not_head,
        "used id 50 is not in flight");
}

TEST_CASE("virtio-blk hostile: a request completed twice") {
    hostile_ring(
        3,
        [](VirtioBlkModel& m) {
            const ModelChain first = m.outstanding.front();
            m.complete(first);
            m.push_used(first.head, 4097);
        },
        VirtioErr::used_twice, "completed twice");
}

TEST_CASE("virtio-blk hostile: used len beyond the writable bytes") {
    hostile_ring(
        2,
        [](VirtioBlkModel& m) {
            m.push_used(m.outstanding.front().head, 4096 + 1 + 1); // data + status + 1
        },
        VirtioErr::used_len, "exceeds its 4097 device-writable bytes");
}

TEST_CASE("virtio-blk hostile: used idx jumping past the queue size") {
    hostile_ring(
        2, [](VirtioBlkModel& m) { m.set_used_idx(65); }, VirtioErr::used_idx,
        "used idx moved from 0 to 65");
}

TEST_CASE("virtio-blk hostile: rewriting the shared descriptor table changes nothing") {
    auto rig = BlkRig::make();
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::uint8_t* victim = rig->tracked(4096, 0x42); // what a rewritten addr would hit
    // After taking each chain, the device rewrites the whole table: loops,
    // huge lengths, addresses of private memory.
    rig->model.on_complete = [&](VirtioBlkModel& m, const ModelChain& c) {
        for (std::uint16_t i = 0; i < m.queue_num; ++i)
            m.desc(i) =
                VirtqDesc{ptr_gpa(victim), 0x10000000, kVirtqDescFNext | kVirtqDescFWrite, c.head};
        m.complete(c); // honest about what it was given
        return true;
    };
    for (int round = 0; round < 40; ++round) {
        std::uint8_t* buf = rig->tracked(2048);
        const auto sector = static_cast<std::uint64_t>(round) * 4;
        REQUIRE(rig->blk->read(sector, buf, 2048) == VirtioErr::none);
        CHECK(std::memcmp(buf, rig->disk(sector), 2048) == 0);
    }
    CHECK_FALSE(rig->blk->broken());
    CHECK(rig->blk->queue().num_free() == rig->blk->queue().size());
    CHECK(std::memcmp(victim, std::vector<std::uint8_t>(4096, 0x42).data(), 4096) == 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk hostile: a device asking for a reset fails what is in flight") {
    auto rig = BlkRig::make();
    rig->model.completion = VirtioBlkModel::Completion::manual;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::uint8_t* buf = rig->tracked(512);
    BlkRequest r = read_req(0, buf, 512);
    REQUIRE(rig->blk->submit(&r, 1) == VirtioErr::none);
    rig->model.status |= kVirtioStatusNeedsReset;
    rig->model.interrupt_status |= kVirtioMmioIntConfigChange;
    CHECK(rig->blk->wait(r) == VirtioErr::queue_broken);
    CHECK(has(rig->model.console, "device needs a reset"));
    CHECK(rig->blk->queue().broken_reason() == VirtioErr::device_failed);
    CHECK(rig->model.acks == 1);
    CHECK(rig->model.status == kVirtioStatusFailed);
}

TEST_CASE("virtio-blk hostile: the transport vanishing mid-flight fails the request") {
    auto rig = BlkRig::make();
    REQUIRE(rig->blk->init() == VirtioErr::none);
    rig->model.unplugged = true;
    std::uint8_t* buf = rig->tracked(512, 0x19);
    CHECK(rig->blk->read(0, buf, 512) == VirtioErr::queue_broken);
    CHECK(rig->blk->queue().broken_reason() == VirtioErr::transport);
    CHECK(has(rig->model.console, "register access failed (QueueNotify"));
    CHECK(buf[0] == 0);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk: shutdown resets the device and fails what is in flight") {
    auto rig = BlkRig::make();
    rig->model.completion = VirtioBlkModel::Completion::manual;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::uint8_t* buf = rig->tracked(512);
    BlkRequest r = read_req(0, buf, 512);
    REQUIRE(rig->blk->submit(&r, 1) == VirtioErr::none);
    rig->blk->shutdown();
    CHECK(r.done);
    CHECK(r.result == VirtioErr::queue_broken);
    CHECK(rig->model.status == 0);
    CHECK_FALSE(rig->blk->queue().ready());
}

// ---- A secure guest's device: everything bounces through the pool ----

TEST_CASE("virtio-blk restricted: the device sees only the bounce pool, and round trips") {
    auto rig = BlkRig::make(1u << 20);
    REQUIRE(rig->blk->init() == VirtioErr::none);
    const std::uint64_t baseline = rig->pool.used_slots(); // rings and header slots
    CHECK(baseline > 0);
    CHECK(rig->model.in_window(rig->model.desc_addr, 16 * rig->model.queue_num));
    CHECK(rig->model.in_window(rig->model.avail_addr, 6 + 2 * rig->model.queue_num));
    CHECK(rig->model.in_window(rig->model.used_addr, 6 + 8 * rig->model.queue_num));

    std::uint8_t* in = rig->tracked(300 * 1024); // several segments
    REQUIRE(rig->blk->read(7, in, 300 * 1024) == VirtioErr::none);
    CHECK(std::memcmp(in, rig->disk(7), 300 * 1024) == 0);
    std::uint8_t* out = rig->tracked(8192, 0x6d);
    REQUIRE(rig->blk->write(1000, out, 8192) == VirtioErr::none);
    CHECK(std::memcmp(rig->disk(1000), out, 8192) == 0);
    REQUIRE(rig->blk->flush() == VirtioErr::none);
    auto* id = reinterpret_cast<char*>(rig->tracked(kVirtioBlkIdBytes + 1));
    REQUIRE(rig->blk->get_id(id) == VirtioErr::none);
    CHECK(std::string(id) == "svmkit-test-disk");

    CHECK(rig->model.dma_outside == 0);
    // Every mapping was undone: what is left above the baseline is the DMA
    // device's cache, which gives it back when drained.
    CHECK(rig->pool.used_slots() == baseline + rig->dma.cached_slots());
    CHECK(rig->pool.check_invariants() == nullptr);
    rig->dma.drain_cache();
    CHECK(rig->pool.used_slots() == baseline);
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk restricted hostile: rewriting a bounce buffer after completion") {
    auto rig = BlkRig::make(1u << 20);
    rig->model.completion = VirtioBlkModel::Completion::manual;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    std::uint8_t* buf = rig->tracked(4096);
    BlkRequest r = read_req(40, buf, 4096);
    REQUIRE(rig->blk->submit(&r, 1) == VirtioErr::none);
    REQUIRE(rig->model.outstanding.size() == 1);
    const ModelChain chain = rig->model.outstanding.front();
    rig->model.complete_all();
    REQUIRE(rig->blk->wait(r) == VirtioErr::none);
    CHECK(std::memcmp(buf, rig->disk(40), 4096) == 0);

    // The device keeps writing where the data and the status were.
    for (const auto& b : chain.bufs)
        if (b.write)
            std::memset(rig->model.at<std::uint8_t>(b.addr, b.len), 0xbd, b.len);
    rig->blk->poll();
    CHECK(r.result == VirtioErr::none);
    CHECK(std::memcmp(buf, rig->disk(40), 4096) == 0); // copied out once, never re-read
    CHECK(rig->canaries_intact());
}

TEST_CASE("virtio-blk restricted hostile: a device writing less than a read exposes no stale "
          "pool bytes") {
    auto rig = BlkRig::make(256u << 10);
    REQUIRE(rig->blk->init() == VirtioErr::none);
    // A write leaves its bytes in the pool's slots...
    std::uint8_t* secret = rig->tracked(16384, 0x5a);
    REQUIRE(rig->blk->write(0, secret, 16384) == VirtioErr::none);
    // ...then a read the device "completes" without writing any data.
    rig->model.on_complete = [](VirtioBlkModel& m, const ModelChain& c) {
        *m.at<std::uint8_t>(c.bufs.back().addr) = kVirtioBlkSOk;
        m.push_used(c.head, 1);
        return true;
    };
    std::uint8_t* buf = rig->tracked(16384, 0x11);
    REQUIRE(rig->blk->read(100, buf, 16384) == VirtioErr::none);
    CHECK(std::memcmp(buf, std::vector<std::uint8_t>(16384, 0x11).data(), 16384) == 0);
}

TEST_CASE("virtio-blk restricted: a full bounce pool makes submit wait for completions") {
    auto rig = BlkRig::make(256u << 10); // one swiotlb segment: 128 slots of 2 KiB
    rig->model.completion = VirtioBlkModel::Completion::on_cede;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    const std::uint64_t baseline = rig->pool.used_slots();
    constexpr int kN = 6; // 6 x 64 KiB: only 3 fit next to the rings
    BlkRequest reqs[kN];
    std::uint8_t* bufs[kN];
    for (int i = 0; i < kN; ++i) {
        bufs[i] = rig->tracked(64 * 1024);
        reqs[i] = read_req(static_cast<std::uint64_t>(i) * 128, bufs[i], 64 * 1024);
    }
    CHECK(rig->blk->submit(reqs, kN) == VirtioErr::none);
    rig->blk->wait_all();
    for (int i = 0; i < kN; ++i) {
        CAPTURE(i);
        CHECK(reqs[i].result == VirtioErr::none);
        CHECK(std::memcmp(bufs[i], rig->disk(static_cast<std::uint64_t>(i) * 128), 64 * 1024) == 0);
    }
    CHECK(rig->model.max_outstanding == 3);
    CHECK(rig->pool.used_slots() == baseline);
    CHECK(rig->report.count() == 0);
}

TEST_CASE("virtio-blk restricted: a request bigger than the pool fails with the pool's numbers") {
    auto rig = BlkRig::make(256u << 10);
    REQUIRE(rig->blk->init() == VirtioErr::none);
    const std::uint64_t baseline = rig->pool.used_slots();
    std::uint8_t* buf = rig->tracked(512 * 1024, 0x21);
    BlkRequest r = read_req(0, buf, 512 * 1024);
    CHECK(rig->blk->submit(&r, 1) == VirtioErr::dma_pool_full);
    CHECK(r.done);
    CHECK(r.result == VirtioErr::dma_pool_full);
    CHECK(rig->report.code() == VirtioErr::dma_pool_full);
    CHECK_MESSAGE(has(rig->message(), "request of 524288 bytes cannot be mapped: swiotlb buffer "
                                      "is full (sz: 65536 bytes), total 128 (slots), used"),
                  rig->message());
    CHECK(has(rig->model.console, "swiotlb buffer is full"));
    CHECK(rig->pool.used_slots() == baseline); // the segments mapped so far were undone
    CHECK(rig->model.notifies == 0);
    // Smaller requests still work.
    CHECK(rig->blk->read(0, buf, 64 * 1024) == VirtioErr::none);
    CHECK(std::memcmp(buf, rig->disk(0), 64 * 1024) == 0);
}

TEST_CASE("virtio-blk restricted hostile: a broken ring leaks no bounce slots") {
    auto rig = BlkRig::make(1u << 20);
    rig->model.completion = VirtioBlkModel::Completion::manual;
    REQUIRE(rig->blk->init() == VirtioErr::none);
    const std::uint64_t baseline = rig->pool.used_slots();
    BlkRequest reqs[3];
    std::uint8_t* bufs[3];
    for (int i = 0; i < 3; ++i) {
        bufs[i] = rig->tracked(32 * 1024, 0x44);
        reqs[i] = read_req(static_cast<std::uint64_t>(i) * 64, bufs[i], 32 * 1024);
    }
    REQUIRE(rig->blk->submit(reqs, 3) == VirtioErr::none);
    CHECK(rig->pool.used_slots() == baseline + 3 * 16);
    // The device scribbles into the bounce buffers, then forges a used entry.
    for (const ModelChain& c : rig->model.outstanding)
        for (const auto& b : c.bufs)
            if (b.write)
                std::memset(rig->model.at<std::uint8_t>(b.addr, b.len), 0xee, b.len);
    rig->model.push_used(rig->model.outstanding[1].head, 40000);
    rig->blk->poll();
    CHECK(rig->blk->queue().broken_reason() == VirtioErr::used_len);
    for (int i = 0; i < 3; ++i) {
        CHECK(reqs[i].result == VirtioErr::queue_broken);
        CHECK(std::memcmp(bufs[i], std::vector<std::uint8_t>(32 * 1024, 0).data(), 32 * 1024) == 0);
    }
    CHECK(rig->pool.used_slots() == baseline + rig->dma.cached_slots());
    CHECK(rig->dma.cached_slots() == 3 * 16); // the three 32 KiB buffers, kept for reuse
    CHECK(rig->pool.check_invariants() == nullptr);
    rig->dma.drain_cache();
    CHECK(rig->pool.used_slots() == baseline);
    CHECK(rig->canaries_intact());
}
