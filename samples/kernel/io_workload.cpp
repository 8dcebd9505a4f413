#include "samples/kernel/io_workload.h"

#include "guest/cmdline.h"
#include "guest/cycles.h"
#include "guest/dma.h"
#include "guest/fdt_util.h"
#include "guest/sha2.h"
#include "guest/swiotlb.h"
#include "guest/uv_abi.h"
#include "guest/virtio_blk.h"
#include "guest/virtio_mmio.h"
#include "guest/zalloc.h"
#include "loader/disk_layout.h"
#include "samples/common/disk_bytes.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::sample {

using namespace svmkit::guest;

namespace {

constexpr uint64_t kBlock = 4096;         // the unit of offsets, sizes and versions
constexpr uint32_t kMaxIo = 256 * 1024;   // largest request of the verify mode
constexpr unsigned kMaxDepth = 8;         // requests in flight at most
constexpr uint64_t kMaxRegion = 64 << 20; // the part of the disk the workload uses
constexpr uint64_t kRegionBlocks = kMaxRegion / kBlock;
constexpr unsigned kMaxRanges = 8192;     // writes remembered for the read-back
constexpr uint32_t kUnknown = 0xffffffff; // a block whose last write failed
constexpr uint64_t kFailuresShown = 3;

// Private memory (.bss): I/O buffers, the pool's bookkeeping, ring memory of
// a direct device, per-block versions, and a sentinel checksummed around the
// workload. None of it is ever shared.
alignas(4096) uint8_t g_buffers[kMaxDepth][kMaxIo];
alignas(64) uint8_t g_swiotlb_meta[4 << 20];
alignas(4096) uint8_t g_coherent[256 << 10];
uint32_t g_versions[kRegionBlocks]; // invariant: 0 = never written by us
struct WrittenRange {
    uint32_t block, blocks;
};
WrittenRange g_ranges[kMaxRanges];
alignas(64) uint8_t g_sentinel[64 << 10];
alignas(4096) uint8_t g_probe[4096]; // the partition table, read before the workload

struct Rng {
    uint64_t s;
    uint64_t next() { // xorshift64*
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
    uint64_t below(uint64_t n) { return next() % n; }
};

uint64_t mix(uint64_t x) { // splitmix64's finaliser
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// What block `block` holds after its `version`-th write.
void fill_block(uint8_t* out, uint64_t seed, uint64_t block, uint32_t version) {
    const uint64_t key = mix(seed ^ mix(block * 0x100000001ull + version));
    for (uint64_t w = 0; w < kBlock / 8; ++w) {
        const uint64_t v = mix(key + w);
        memcpy(out + w * 8, &v, 8);
    }
}

uint64_t now_ns(const Calls& calls) {
    svmkit_regs r{};
    calls.hcall(H_SVMKIT_TIMEBASE, 0, 0, 0, 0, &r);
    return r.r[4];
}

uint64_t param(const IoContext& ctx, const char* name, uint64_t fallback) {
    const char* v = nullptr;
    size_t len = 0;
    uint64_t out = 0;
    if (ctx.bootargs == nullptr ||
        !cmdline_param(ctx.bootargs, static_cast<size_t>(ctx.bootargs_len), name, &v, &len) ||
        !parse_size(v, len, &out))
        return fallback;
    return out;
}

bool param_is(const IoContext& ctx, const char* name, const char* want) {
    const char* v = nullptr;
    size_t len = 0;
    return ctx.bootargs != nullptr &&
           cmdline_param(ctx.bootargs, static_cast<size_t>(ctx.bootargs_len), name, &v, &len) &&
           len == strlen(want) && memcmp(v, want, len) == 0;
}

bool contains(const uint8_t* hay, uint64_t n, const uint8_t* needle, uint64_t m) {
    for (uint64_t i = 0; i + m <= n; ++i)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

// A request's fields as a fresh one has them.
void reset(BlkRequest& r, BlkOp op, uint64_t sector, void* data, uint32_t bytes) {
    r.op = op;
    r.sector = sector;
    r.data = data;
    r.bytes = bytes;
    r.done = false;
    r.result = VirtioErr::none;
}

struct Workload {
    Workload(const IoContext& c, VirtioBlk& b, Swiotlb* p) : ctx(c), con(*c.con), blk(b), pool(p) {}
    const IoContext& ctx;
    Console& con;
    VirtioBlk& blk;
    Swiotlb* pool;
    // Owned by the driver from submit() until done.
    uint64_t seed = 1;
    unsigned depth = kMaxDepth;
    uint64_t region_blocks = 0;
    uint64_t base_block = 0;      // where the region starts on the disk (the data partition)
    uint64_t pool_high_water = 0; // bytes
    uint64_t failed = 0;          // requests the device failed
    uint64_t mismatched = 0;      // blocks read back wrong
    BlkRequest reqs[kMaxDepth];
    bool stages = false; // svmkit.io_stages=1: time the driver's stages (BlkStats)
    BlkStats stats;

    // Region block <-> disk sector.
    uint64_t sector_of(uint64_t block) const { return (base_block + block) * (kBlock / 512); }
    uint64_t block_of(const BlkRequest& r) const { return r.sector / (kBlock / 512) - base_block; }

    void sample_pool() {
        if (pool != nullptr) {
            const uint64_t used = pool->used_slots() * Swiotlb::kSlotSize;
            if (used > pool_high_water)
                pool_high_water = used;
        }
    }

    // Submits reqs[0..n) and waits for all; counts failures and says which
    // request failed and why (the first few; then only the count).
    void run_batch(unsigned n) {
        blk.submit(reqs, n);
        sample_pool();
        blk.wait_all();
        for (unsigned i = 0; i < n; ++i) {
            if (reqs[i].result == VirtioErr::none)
                continue;
            if (failed++ < kFailuresShown) {
                con.str("svmkit sample kernel: io request failed: ");
                con.str(reqs[i].op == BlkOp::write ? "write" : "read").str(" of ");
                con.dec(reqs[i].bytes).str(" bytes at sector ").dec(reqs[i].sector).str(": ");
                con.str(virtio_err_name(reqs[i].result)).nl();
            }
        }
    }

    void report_rate(const char* what, uint64_t bytes, uint64_t requests, uint64_t ns) {
        if (ns == 0)
            ns = 1;
        con.str("svmkit sample kernel: io ").str(what).str(" ").dec(bytes >> 10).str(" KiB in ");
        con.dec(requests).str(" requests, ").dec(ns / 1000).str(" us, ");
        con.dec(bytes * 1000 / ns)
            .str(" MB/s, ")
            .dec(requests * 1000000000ull / ns)
            .str(" IOPS")
            .nl();
    }

    // Random writes of 4 KiB..256 KiB, then each written range read back
    // (in another random order) and compared block by block.
    void verify(uint64_t total) {
        Rng rng{mix(seed) | 1};
        unsigned nranges = 0;
        uint64_t written = 0, requests = 0;
        const uint64_t t0 = now_ns(*ctx.calls);
        while (written < total && nranges < kMaxRanges && !blk.broken()) {
            unsigned n = 0;
            for (; n < depth && written < total && nranges < kMaxRanges; ++n) {
                uint64_t blocks = 1 + rng.below(kMaxIo / kBlock);
                if (blocks > region_blocks)
                    blocks = region_blocks;
                uint64_t first = 0;
                // In-flight requests never overlap: their order is the device's.
                for (int tries = 0;; ++tries) {
                    first = rng.below(region_blocks - blocks + 1);
                    bool overlap = false;
                    for (unsigned j = 0; j < n; ++j) {
                        const uint64_t a = block_of(reqs[j]);
                        const uint64_t b = a + reqs[j].bytes / kBlock;
                        if (first < b && a < first + blocks)
                            overlap = true;
                    }
                    if (!overlap || tries > 16)
                        break;
                }
                for (uint64_t b = 0; b < blocks; ++b) {
                    uint32_t& v = g_versions[first + b];
                    v = v == kUnknown ? 1 : v + 1;
                    fill_block(g_buffers[n] + b * kBlock, seed, first + b, v);
                }
                reset(reqs[n], BlkOp::write, sector_of(first), g_buffers[n],
                      static_cast<uint32_t>(blocks * kBlock));
                g_ranges[nranges++] = {static_cast<uint32_t>(first), static_cast<uint32_t>(blocks)};
                written += blocks * kBlock;
            }
            run_batch(n);
            requests += n;
            for (unsigned i = 0; i < n; ++i)
                if (reqs[i].result != VirtioErr::none) // its blocks now hold anything
                    for (uint64_t b = 0; b < reqs[i].bytes / kBlock; ++b)
                        g_versions[block_of(reqs[i]) + b] = kUnknown;
        }
        report_rate("write", written, requests, now_ns(*ctx.calls) - t0);
        if (blk.flush() != VirtioErr::none)
            ++failed;

        // Read back in a shuffled order.
        for (unsigned i = nranges; i > 1; --i) {
            const unsigned j = static_cast<unsigned>(rng.below(i));
            const WrittenRange t = g_ranges[i - 1];
            g_ranges[i - 1] = g_ranges[j];
            g_ranges[j] = t;
        }
        uint64_t read = 0, verified = 0;
        requests = 0;
        alignas(8) uint8_t expect[kBlock];
        const uint64_t t1 = now_ns(*ctx.calls);
        for (unsigned r = 0; r < nranges && !blk.broken();) {
            unsigned n = 0;
            for (; n < depth && r < nranges; ++n, ++r) {
                reset(reqs[n], BlkOp::read, sector_of(g_ranges[r].block), g_buffers[n],
                      static_cast<uint32_t>(g_ranges[r].blocks * kBlock));
                memset(g_buffers[n], 0xa5, reqs[n].bytes);
            }
            run_batch(n);
            requests += n;
            for (unsigned i = 0; i < n; ++i) {
                if (reqs[i].result != VirtioErr::none)
                    continue; // failed reads were reported; their buffer holds nothing
                read += reqs[i].bytes;
                const uint64_t first = block_of(reqs[i]);
                for (uint64_t b = 0; b < reqs[i].bytes / kBlock; ++b) {
                    const uint32_t v = g_versions[first + b];
                    if (v == kUnknown)
                        continue;
                    fill_block(expect, seed, first + b, v);
                    ++verified;
                    if (memcmp(expect, g_buffers[i] + b * kBlock, kBlock) != 0) {
                        if (mismatched++ == 0)
                            con.str("svmkit sample kernel: io MISMATCH at block ")
                                .dec(first + b)
                                .nl();
                    }
                }
            }
        }
        report_rate("read", read, requests, now_ns(*ctx.calls) - t1);
        con.str("svmkit sample kernel: io verified ").dec(verified).str(" blocks of 4 KiB, ");
        con.dec(mismatched).str(" mismatched").nl();
    }

    // Benchmarks: sequential 128 KiB reads or random 4 KiB reads. The queue is
    // kept full: each slot is resubmitted as soon as its data is copied out,
    // so the bounce copies of one request overlap the device's work on the
    // others (a vCPU and a back end run in parallel, as on a real machine).
    // The slots found done together go back together: one notification.
    void read_only(uint64_t total, bool sequential) {
        Rng rng{mix(seed) | 1};
        const uint64_t size = sequential ? uint64_t{128} * 1024 : kBlock;
        const uint64_t span = region_blocks * kBlock;
        uint64_t issued = 0, done = 0, requests = 0, at = 0;
        auto prepare = [&](unsigned i) {
            if (!sequential)
                at = rng.below(region_blocks) * kBlock;
            else if (at + size > span)
                at = 0;
            reset(reqs[i], BlkOp::read, sector_of(0) + at / 512, g_buffers[i],
                  static_cast<uint32_t>(size));
            at += size;
            issued += size;
        };
        auto account = [&](unsigned i) {
            ++requests;
            if (reqs[i].result == VirtioErr::none) {
                done += size;
            } else if (failed++ < kFailuresShown) {
                con.str("svmkit sample kernel: io request failed: read at sector ");
                con.dec(reqs[i].sector).str(": ").str(virtio_err_name(reqs[i].result)).nl();
            }
        };
        if (stages)
            blk.set_stats(&stats);
        const uint64_t t0 = now_ns(*ctx.calls);
        const uint64_t c0 = read_cycles();
        unsigned live = 0; // slots 0..live-1 have been submitted
        for (; live < depth && issued < total; ++live)
            prepare(live);
        blk.submit(reqs, live);
        sample_pool();
        // Round robin over the slots: wait for the oldest, then resubmit it
        // and every slot after it that is done too, in one batch.
        BlkRequest* again[kMaxDepth];
        for (unsigned i = 0; issued < total && !blk.broken();) {
            blk.wait(reqs[i]);
            unsigned n = 0;
            for (; n < live && reqs[i].done && issued < total; ++n, i = (i + 1) % live) {
                account(i);
                prepare(i);
                again[n] = &reqs[i];
            }
            blk.submit(again, n);
        }
        blk.wait_all();
        for (unsigned i = 0; i < live; ++i)
            if (reqs[i].done)
                account(i);
        const uint64_t c1 = read_cycles();
        const uint64_t ns = now_ns(*ctx.calls) - t0;
        blk.set_stats(nullptr);
        report_rate(sequential ? "seqread" : "randread", done, requests, ns);
        if (stages)
            report_stages(requests, ns, c1 - c0);
    }

    // The driver's stages per request, in ns (ticks converted at the rate
    // measured over the run): where a request's share of the run's wall
    // time went in the guest. "other" is the workload's own loop; "sleep"
    // is time the vCPU idled waiting for the device (the device, not the
    // guest, was the slower side then).
    void report_stages(uint64_t requests, uint64_t ns, uint64_t ticks) {
        if (requests == 0 || ticks == 0)
            return;
        static const char* const kNames[BlkStats::kStages] = {"copy_in", "submit", "sleep",
                                                              "copy_out", "reap"};
        // ns per million ticks: no overflow for runs of hours, and no
        // 128-bit division (freestanding: no libgcc).
        const uint64_t ns_per_mtick = ns * 1000000 / ticks;
        auto per_request_ns = [&](uint64_t t) {
            return t / requests * ns_per_mtick / 1000000;
        };
        uint64_t counted = 0;
        con.str("svmkit sample kernel: io stages ns/request:");
        for (unsigned s = 0; s < BlkStats::kStages; ++s) {
            counted += stats.ticks[s];
            con.str(" ").str(kNames[s]).str(" ").dec(per_request_ns(stats.ticks[s]));
        }
        con.str(" other ").dec(counted < ticks ? per_request_ns(ticks - counted) : 0);
        con.str(" total ").dec(ns / requests);
        con.str("; per 1000 requests: kicks ").dec(stats.kicks * 1000 / requests);
        con.str(" cedes ").dec(stats.cedes * 1000 / requests);
        con.str(" in-flight-at-cede ")
            .dec(stats.cedes != 0 ? stats.in_flight_at_cede * 1000 / stats.cedes : 0)
            .nl();
    }
};

// The first virtio-blk device of the FDT: its register window.
bool find_disk(const IoContext& ctx, VirtioReport& report, Range* window) {
    for (int dev = fdt_next_virtio_mmio(ctx.fdt, -1, window); dev >= 0;
         dev = fdt_next_virtio_mmio(ctx.fdt, dev, window)) {
        VirtioMmio probe(ctx.calls, window->base, window->size, &report);
        if (probe.probe(kVirtioIdBlock) == VirtioErr::none)
            return true;
    }
    return false;
}

// The part of the disk the workload may write: an svmkit boot disk's data
// partition (docs/loader.md), never its boot partition; any other disk from
// its start. False (after saying why) for a boot disk without a data
// partition. A probe that fails to read (a broken device) leaves the whole
// disk, where the workload then meets the same device.
bool choose_region(Console& con, VirtioBlk& blk, Workload& w) {
    const uint64_t disk_bytes = blk.capacity() * 512;
    samples::DiskBytes reader{&blk, g_probe, sizeof g_probe};
    loader::BootPartition part{};
    uint64_t first = 0, bytes = disk_bytes;
    if (loader::find_data_partition(samples::read_disk_bytes, &reader, disk_bytes, &part) ==
        loader::DiskError::none) {
        first = part.byte_offset;
        bytes = part.byte_size;
        con.str("svmkit sample kernel: io: the svmkit data partition at byte ").hex(first);
        con.str(part.from_backup_gpt ? " (from the backup GPT: the primary is damaged)" : "").nl();
    } else if (loader::find_boot_partition(samples::read_disk_bytes, &reader, disk_bytes, &part) ==
               loader::DiskError::none) {
        con.str("svmkit sample kernel: io: the disk is an svmkit boot disk without a data "
                "partition: not writing to it")
            .nl();
        return false;
    }
    w.base_block = (first + kBlock - 1) / kBlock;
    const uint64_t end_block = (first + bytes) / kBlock; // within the disk: no overflow
    const uint64_t blocks = end_block > w.base_block ? end_block - w.base_block : 0;
    w.region_blocks = blocks < kRegionBlocks ? blocks : kRegionBlocks;
    return true;
}

} // namespace

uint64_t run_io_workload(const IoContext& ctx) {
    Console& con = *ctx.con;
    const uint64_t total = param(ctx, "svmkit.io", 4) << 20;
    if (total == 0)
        return kIoOk;
    VirtioReport quiet;
    Range window;
    if (!find_disk(ctx, quiet, &window))
        return kIoOk; // no disk: nothing to do
    VirtioReport report(&con);

    // The DMA path: bounced through the pool when secure, direct otherwise.
    Swiotlb swiotlb;
    BumpArena arena{g_coherent, sizeof g_coherent, 0};
    DmaDevice dma = DmaDevice::direct(&arena);
    if (ctx.secure) {
        // Touch the pool once, as Linux's swiotlb init clears it: its pages are
        // allocated now rather than on the I/O path.
        memset(gpa_ptr(ctx.pool.base), 0, ctx.pool.size);
        const Swiotlb::InitError e =
            swiotlb.init(ctx.pool, 1, g_swiotlb_meta, sizeof g_swiotlb_meta);
        if (e != Swiotlb::InitError::none) {
            con.str("svmkit sample kernel: io: the pool cannot be used for swiotlb (error ");
            con.dec(static_cast<uint64_t>(e)).str(")").nl();
            return kIoFailed;
        }
        dma = DmaDevice::restricted(&swiotlb, 0);
    }

    // A sentinel in private memory, checksummed around the workload: a device
    // (or hypervisor) writing where it must not shows up here.
    for (uint64_t i = 0; i < sizeof g_sentinel; ++i)
        g_sentinel[i] = static_cast<uint8_t>(mix(i) >> 7);
    uint8_t before[32], after[32];
    sha2(HashAlgorithm::sha256, g_sentinel, sizeof g_sentinel, before);

    VirtioMmio mmio(ctx.calls, window.base, window.size, &report);
    VirtioBlk blk(&mmio, &dma, &report);
    if (blk.init() != VirtioErr::none) {
        con.str("svmkit sample kernel: io: the disk was refused: ").str(report.message()).nl();
        return kIoRefused;
    }
    Workload w(ctx, blk, ctx.secure ? &swiotlb : nullptr);
    w.seed = param(ctx, "svmkit.io_seed", 1);
    w.depth = static_cast<unsigned>(param(ctx, "svmkit.io_depth", kMaxDepth));
    if (w.depth < 1 || w.depth > kMaxDepth)
        w.depth = kMaxDepth;
    w.stages = param(ctx, "svmkit.io_stages", 0) != 0;
    if (!choose_region(con, blk, w))
        return kIoRefused;
    con.str("svmkit sample kernel: io on virtio-blk at ").hex(window.base).str(": ");
    con.dec(blk.capacity() * 512 >> 20)
        .str(" MiB, ")
        .str(ctx.secure ? "bounced through the pool" : "direct DMA");
    con.str(", ").dec(w.depth).str(" in flight").nl();
    if (w.region_blocks < kMaxIo / kBlock) {
        con.str("svmkit sample kernel: io: the disk is smaller than 256 KiB").nl();
        return kIoFailed;
    }

    if (param_is(ctx, "svmkit.io_mode", "seqread"))
        w.read_only(total, true);
    else if (param_is(ctx, "svmkit.io_mode", "randread"))
        w.read_only(total, false);
    else
        w.verify(total);
    const bool broken = blk.broken();
    blk.shutdown();

    sha2(HashAlgorithm::sha256, g_sentinel, sizeof g_sentinel, after);
    const bool leak = ctx.secure && contains(gpa_ptr(ctx.pool.base), ctx.pool.size, ctx.canary, 32);
    if (ctx.secure) {
        con.str("svmkit sample kernel: io pool high-water ").dec(w.pool_high_water >> 10);
        con.str(" KiB of ").dec(ctx.pool.size >> 10).str(" KiB; canary in the shared pool: ");
        con.str(leak ? "FOUND" : "no").nl();
    }
    con.str("svmkit sample kernel: io failed requests ").dec(w.failed).str(", private memory ");
    con.str(memcmp(before, after, 32) == 0 ? "intact" : "CHANGED").nl();
    if (memcmp(before, after, 32) != 0)
        return kIoPrivateCorrupt;
    if (leak)
        return kIoLeak;
    if (w.mismatched != 0)
        return kIoCorrupt;
    if (w.failed != 0 || broken)
        return kIoFailed;
    return kIoOk;
}

} // namespace svmkit::sample
