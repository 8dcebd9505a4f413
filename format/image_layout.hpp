// Where an image's parts sit, in memory and in the file.
//
//   guest-physical                               file offset
//   image_base           .text   (stub code, R+X)   0x10000
//   stub rodata          .rodata (stub data, R)     0x10000 + (addr - image_base)
//   stub end             .kernel:esm_blob (R)       ...
//   next 64 KiB          .kernel:vmlinux.strip (R)
//   next 64 KiB          .kernel:initrd (R)         (when given)
//   next 64 KiB          .kernel:cmdline (R)        (when given)
//   next 64 KiB          .kernel:dtb (R)            (when given)
//                        .shstrtab, section headers (not loaded)
//
// Format version 1: every loaded section has its own PT_LOAD segment with
// p_paddr = its guest-physical address, p_vaddr = link VA base + p_paddr,
// p_offset = kFirstLoadOffset + (p_paddr - image_base), p_filesz = p_memsz =
// size. Version 2: one such PT_LOAD from image_base to the end of the last
// section (manifest.hpp says which arch gets which).
// The manifest section has a fixed capacity (a multiple of 64 KiB) so that
// signatures can be attached later without moving anything else.
#pragma once

#include <cstdint>

namespace svmkit::format {

inline constexpr std::uint64_t kFirstLoadOffset = 0x10000;
inline constexpr const char* kManifestSection = ".kernel:esm_blob";
// Room left in the manifest section for signatures attached after the build.
inline constexpr std::uint64_t kSignatureReserve = 32 * 1024;
inline constexpr std::uint64_t kMaxImageSections = 16;
inline constexpr std::uint64_t kMaxImageSegments = 16;

inline constexpr std::uint64_t image_file_offset(std::uint64_t image_base, std::uint64_t address) {
    return kFirstLoadOffset + (address - image_base);
}

} // namespace svmkit::format
