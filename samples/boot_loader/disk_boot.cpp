// Grub-style: the boot menu and the image from a virtio-blk disk, read with
// direct DMA (the guest is not secure yet), then boot_image() (boot_loader.h).
#include "samples/boot_loader/boot_loader.h"

#include "guest/cmdline.h"
#include "guest/fdt_util.h"
#include "guest/region_alloc.h"
#include "guest/uv_abi.h"
#include "guest/virtio_blk.h"
#include "guest/virtio_mmio.h"
#include "guest/zalloc.h"
#include "loader/boot_cfg.h"
#include "loader/disk_layout.h"
#include "samples/common/disk_bytes.h"

#include <libfdt.h>
#include <string.h>

namespace svmkit::boot_loader {

using namespace svmkit::guest;

namespace {

constexpr uint64_t kSector = 512;
constexpr uint64_t kMaxBootCfg = loader::kMaxBootCfgSize;

// Private memory (.bss) for the driver: ring and header memory of a direct
// device, a bounce for unaligned reads, the boot menu's text and the menu.
alignas(4096) uint8_t g_coherent[256 << 10];
alignas(4096) uint8_t g_scratch[64 << 10];
char g_boot_cfg[kMaxBootCfg + 1];
loader::BootMenu g_menu;

// The entry the command line names (svmkit.boot_entry=NAME), else the
// menu's default. -1 (after saying why) when there is none.
int32_t choose_entry(Loader& l, const loader::BootMenu& menu) {
    const char* name = nullptr;
    size_t name_len = 0;
    if (cmdline_param(l.bootargs, static_cast<size_t>(l.bootargs_len), "svmkit.boot_entry", &name,
                      &name_len)) {
        char wanted[loader::kMaxEntryName + 1] = {};
        if (name_len < sizeof wanted) {
            memcpy(wanted, name, name_len);
            const int32_t found = loader::find_boot_entry(menu, wanted);
            if (found >= 0)
                return found;
        }
        l.error("boot.cfg has no entry named \"").write(name, name_len).str("\" (entries:");
        for (uint32_t i = 0; i < menu.count; ++i)
            l.con.str(" \"").str(menu.entries[i].name).str("\"");
        l.con.str(")").nl();
        return -1;
    }
    if (menu.count == 0) {
        l.error("boot.cfg has no menuentry").nl();
        return -1;
    }
    if (menu.default_index < 0 || static_cast<uint32_t>(menu.default_index) >= menu.count) {
        l.error("boot.cfg's default entry does not exist").nl();
        return -1;
    }
    return menu.default_index;
}

// The entry's image: into RAM top-down (clear of everything reserved), its
// bytes starting at the buffer's base.
uint64_t read_image(Loader& l, samples::DiskBytes& disk, const loader::CpioFile& file,
                    Range* buffer) {
    ReservedRanges reserved;
    if (!collect_reserved(l, &reserved))
        return kBadFirmware;
    RegionAllocator alloc(l.ram);
    // Where secure images go: keep the buffer above it when RAM allows.
    bool ok = alloc.reserve(Range{0, SVMKIT_IMAGE_BASE + (16ull << 20)});
    for (int i = 0; ok && i < reserved.count; ++i)
        ok = alloc.reserve(reserved.ranges[i]);
    uint64_t want = 0;
    if (!ok || add_overflows(file.size, 2 * kSector, &want) || !align_up(want, kPageSize, &want) ||
        !alloc.allocate(want, kPageSize, buffer)) {
        l.error("no free RAM for the ").dec(file.size).str("-byte image").nl();
        return kNoRoom;
    }
    // Whole sectors straight into the buffer (direct DMA), then the image
    // moved down to the buffer's base.
    const uint64_t skip = file.data_offset % kSector;
    const uint64_t bytes = (skip + file.size + kSector - 1) / kSector * kSector;
    uint8_t* dst = gpa_ptr<uint8_t>(buffer->base);
    if (bytes > 0 && disk.blk->read(file.data_offset / kSector, dst, bytes) != VirtioErr::none) {
        l.error("reading the image from the disk failed").nl();
        return kDiskError;
    }
    memmove(dst, dst + skip, file.size);
    return 0;
}

// One disk: its boot partition, menu and image. Returns the status to stop
// with, or 0 when the disk has no boot partition (try the next one).
uint64_t boot_from(Loader& l, VirtioBlk& blk) {
    samples::DiskBytes disk{&blk, g_scratch, sizeof g_scratch};
    loader::BootPartition part{};
    const loader::DiskError pe = loader::find_boot_partition(samples::read_disk_bytes, &disk,
                                                             blk.capacity() * kSector, &part);
    if (pe != loader::DiskError::none) {
        l.say("no boot partition on this disk: ").str(loader::disk_error_message(pe)).nl();
        return 0;
    }
    if (part.from_backup_gpt)
        l.say("the primary GPT is damaged: using the backup GPT at the disk's last LBA").nl();
    l.say("boot partition at byte ").dec(part.byte_offset).str(", ").dec(part.byte_size);
    l.con.str(" bytes").nl();
    loader::CpioFile cfg{};
    loader::DiskError de =
        loader::find_cpio_file(samples::read_disk_bytes, &disk, part, "boot.cfg", &cfg);
    if (de != loader::DiskError::none || cfg.size > kMaxBootCfg) {
        l.error("cannot read boot.cfg: ");
        l.con.str(de != loader::DiskError::none ? loader::disk_error_message(de) : "too large")
            .nl();
        return kMenuError;
    }
    if (!loader::read_cpio_file(samples::read_disk_bytes, &disk, cfg, g_boot_cfg, kMaxBootCfg)) {
        l.error("reading boot.cfg failed").nl();
        return kDiskError;
    }
    g_boot_cfg[cfg.size] = '\0';
    loader::BootCfgError err{};
    if (!loader::parse_boot_cfg(g_boot_cfg, cfg.size, &g_menu, &err)) {
        l.error("boot.cfg line ").dec(err.line).str(": ");
        l.con.str(err.message != nullptr ? err.message : "malformed").nl();
        return kMenuError;
    }
    l.say("boot.cfg: ").dec(g_menu.count).str(" entries").nl();
    const int32_t chosen = choose_entry(l, g_menu);
    if (chosen < 0)
        return kMenuError;
    const loader::BootEntry& entry = g_menu.entries[chosen];
    l.calls.trace(SVMKIT_TRACE_LOADER_MENU, g_menu.count, static_cast<uint64_t>(chosen),
                  ptr_gpa(entry.name));
    l.say("booting entry \"").str(entry.name).str("\": ").str(entry.image_path).nl();
    if (entry.cmdline[0] != '\0') {
        l.say("the entry's command line \"").str(entry.cmdline);
        l.con.str("\" is not used: a secure image boots with its signed command line").nl();
    }
    loader::CpioFile file{};
    de = loader::find_cpio_file(samples::read_disk_bytes, &disk, part, entry.image_path, &file);
    if (de != loader::DiskError::none) {
        l.error("cannot read the image ").str(entry.image_path).str(": ");
        l.con.str(loader::disk_error_message(de)).nl();
        return kDiskError;
    }
    Range buffer;
    if (const uint64_t status = read_image(l, disk, file, &buffer); status != 0)
        return status;
    l.say("image read: ").dec(file.size).str(" bytes at ").hex(buffer.base).nl();
    l.calls.trace(SVMKIT_TRACE_LOADER_IMAGE, SVMKIT_LOADER_SOURCE_DISK, buffer.base, file.size);
    // The device was driven non-secure with direct DMA: reset it (status 0)
    // so that the secure kernel finds it fresh and sets it up again through
    // its bounce pool. Nothing of the loader's rings stays live.
    blk.shutdown();
    return boot_image(l, gpa_ptr<const uint8_t>(buffer.base), file.size, buffer);
}

} // namespace

uint64_t boot_from_disks(Loader& l) {
    bool any_disk = false;
    Range window;
    for (int dev = fdt_next_virtio_mmio(l.fdt, -1, &window); dev >= 0;
         dev = fdt_next_virtio_mmio(l.fdt, dev, &window)) {
        VirtioReport quiet;
        VirtioMmio probe(&l.calls, window.base, window.size, &quiet);
        if (probe.probe(kVirtioIdBlock) != VirtioErr::none)
            continue;
        any_disk = true;
        l.say("virtio-blk disk at ").hex(window.base).nl();
        VirtioReport report(&l.con);
        VirtioMmio mmio(&l.calls, window.base, window.size, &report);
        BumpArena arena{g_coherent, sizeof g_coherent, 0};
        DmaDevice dma = DmaDevice::direct(&arena);
        VirtioBlk blk(&mmio, &dma, &report);
        if (blk.init() != VirtioErr::none) {
            l.say("the disk was refused: ").str(report.message()).nl();
            continue;
        }
        const uint64_t status = boot_from(l, blk);
        blk.shutdown();
        if (status != 0)
            return status;
    }
    l.error(any_disk ? "no disk holds an svmkit boot partition"
                     : "nothing to boot: no kexec image and no virtio-blk disk")
        .nl();
    return kNoImage;
}

} // namespace svmkit::boot_loader
