// Fuzz target: the driver's used-ring processing (guest/virtqueue.cpp) with
// device-controlled memory as input. The fuzzer plays the device: it writes
// used elements, used idx and flags, rewrites the shared descriptor table and
// any ring byte, and completes chains honestly or not, interleaved with the
// driver adding chains, draining completions and checking notifications.
//
// Input: [queue size log2 (mod 9)] then operations, each an opcode byte
// (mod 8) and its operands (missing operand bytes read as zero):
//   0 add       count (1 + b % 4), writable count (b % (count + 1)), u16 lengths
//   1 used elem u16 slot, u32 id, u32 len
//   2 used idx  u16
//   3 complete  u32 len: the device pops the next available chain and
//               publishes {head, len} (len may exceed what is writable)
//   4 drain     the driver consumes completions
//   5 table     u8 index, 16 bytes: a shared descriptor overwritten
//   6 raw       u16 offset, 8 bytes: any bytes of the ring memory
//   7 notify    needs_notify()
//
// Oracle, beyond no crash / no UB / no leak: every token the driver hands
// back was in flight and comes back once, with a len no larger than the
// chain's writable bytes; free descriptors plus descriptors in flight always
// equal the queue size; a broken queue accepts and returns nothing and gives
// every outstanding token back exactly once through detach_in_flight().
#include "guest/virtqueue.h"
#include "guest/zalloc.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

using namespace svmkit::guest;

namespace {

struct Input {
    const std::uint8_t* p;
    std::size_t n;
    bool empty() const { return n == 0; }
    std::uint8_t u8() {
        if (n == 0)
            return 0;
        --n;
        return *p++;
    }
    std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(u16() | (std::uint32_t{u16()} << 16)); }
    void bytes(void* out, std::size_t len) {
        auto* o = static_cast<std::uint8_t*>(out);
        for (std::size_t i = 0; i < len; ++i)
            o[i] = u8();
    }
};

struct Chain {
    std::uint32_t writable;
    std::uint16_t descriptors;
};

#define CHECK_OR_DIE(cond)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

alignas(4096) std::uint8_t g_ring_memory[64 * 1024];

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Input in{data, size};
    const auto q = static_cast<std::uint16_t>(1u << (in.u8() % 9));
    BumpArena arena{g_ring_memory, sizeof(g_ring_memory), 0};
    DmaDevice dma = DmaDevice::direct(&arena);
    VirtioReport report(nullptr);
    auto vq = std::make_unique<Virtqueue>();
    CHECK_OR_DIE(vq->init(&dma, 0, q, &report, "fuzz") == VirtioErr::none);

    auto* ring = gpa_ptr(vq->desc_addr());
    const std::uint64_t ring_bytes =
        vq->used_addr() + 4 + 8 * std::uint64_t{q} + 2 - vq->desc_addr();
    auto* table = gpa_ptr<VirtqDesc>(vq->desc_addr());
    auto* avail = gpa_ptr<VirtqAvailHeader>(vq->avail_addr());
    auto* avail_ring = gpa_ptr<std::uint16_t>(vq->avail_addr() + 4);
    auto* used = gpa_ptr<VirtqUsedHeader>(vq->used_addr());
    auto* used_ring = gpa_ptr<VirtqUsedElem>(vq->used_addr() + 4);

    std::map<std::uintptr_t, Chain> in_flight; // the harness's own record
    std::uintptr_t next_token = 1;
    std::uint16_t device_avail = 0;
    std::uint16_t device_used = 0;
    std::uint32_t descriptors_out = 0;

    const auto check_accounting = [&] {
        CHECK_OR_DIE(vq->in_flight() == in_flight.size());
        CHECK_OR_DIE(vq->num_free() + descriptors_out == q);
    };
    const auto drain = [&] {
        void* token = nullptr;
        std::uint32_t len = 0;
        while (vq->get_used(&token, &len)) {
            auto it = in_flight.find(reinterpret_cast<std::uintptr_t>(token));
            CHECK_OR_DIE(it != in_flight.end());
            CHECK_OR_DIE(len <= it->second.writable);
            descriptors_out -= it->second.descriptors;
            in_flight.erase(it);
        }
        if (vq->broken())
            CHECK_OR_DIE(!vq->get_used(&token, &len));
        check_accounting();
    };

    while (!in.empty()) {
        switch (in.u8() % 8) {
        case 0: {
            const auto count = static_cast<std::uint16_t>(1 + in.u8() % 4);
            const auto writable = static_cast<std::uint16_t>(in.u8() % (count + 1));
            VirtqBuffer bufs[4];
            std::uint32_t wbytes = 0;
            for (std::uint16_t i = 0; i < count; ++i) {
                bufs[i].len = 1u + in.u16();
                bufs[i].addr = 0x100000 + i * 0x10000;
                bufs[i].device_writes = i >= count - writable;
                if (bufs[i].device_writes)
                    wbytes += bufs[i].len;
            }
            const VirtioErr e = vq->add(bufs, count, reinterpret_cast<void*>(next_token));
            if (e == VirtioErr::none) {
                CHECK_OR_DIE(!vq->broken());
                in_flight[next_token] = Chain{wbytes, count};
                descriptors_out += count;
            } else if (vq->broken()) {
                CHECK_OR_DIE(e == VirtioErr::queue_broken);
            } else if (count > q) {
                CHECK_OR_DIE(e == VirtioErr::bad_argument);
            } else {
                CHECK_OR_DIE(e == VirtioErr::queue_full && vq->num_free() < count);
            }
            ++next_token;
            check_accounting();
            break;
        }
        case 1: {
            const std::uint16_t slot = in.u16();
            used_ring[slot % q].id = in.u32();
            used_ring[slot % q].len = in.u32();
            break;
        }
        case 2:
            device_used = in.u16();
            __atomic_store_n(&used->idx, device_used, __ATOMIC_RELEASE);
            break;
        case 3: {
            const std::uint32_t len = in.u32();
            const std::uint16_t published = __atomic_load_n(&avail->idx, __ATOMIC_ACQUIRE);
            if (device_avail == published)
                break;
            const std::uint16_t head = avail_ring[device_avail++ % q];
            used_ring[device_used % q] = VirtqUsedElem{head, len};
            ++device_used;
            __atomic_store_n(&used->idx, device_used, __ATOMIC_RELEASE);
            break;
        }
        case 4:
            drain();
            break;
        case 5:
            in.bytes(&table[in.u8() % q], sizeof(VirtqDesc));
            break;
        case 6: {
            const std::uint64_t off = in.u16() % ring_bytes;
            for (std::uint64_t i = 0; i < 8 && off + i < ring_bytes; ++i)
                ring[off + i] = in.u8();
            break;
        }
        case 7:
            (void)vq->needs_notify();
            break;
        }
    }
    drain();

    if (vq->broken()) {
        VirtqBuffer b{0x1000, 8, false};
        CHECK_OR_DIE(vq->add(&b, 1, nullptr) == VirtioErr::queue_broken);
        CHECK_OR_DIE(report.code() != VirtioErr::none);
        void* token = nullptr;
        while (vq->detach_in_flight(&token)) {
            auto it = in_flight.find(reinterpret_cast<std::uintptr_t>(token));
            CHECK_OR_DIE(it != in_flight.end());
            descriptors_out -= it->second.descriptors;
            in_flight.erase(it);
        }
        CHECK_OR_DIE(in_flight.empty());
        check_accounting();
        CHECK_OR_DIE(vq->num_free() == q);
    }
    vq->destroy();
    return 0;
}
