// The files QEMU is given, copied into the boot's private directory first:
// QEMU then reads files nobody else can change during the boot. They are
// opened as svmkit's inputs (base/file.hpp InputFile: regular files, "-"
// spooled from standard input; a FIFO or device is refused, exit 3).
//
// For the kexec entry the image travels inside the first stage's initramfs:
// the given archive (compressed or not), zero-padded to 4 bytes, then an
// uncompressed newc archive holding the image as /svmkit-kexec.img (mode
// 0644) and its trailer. Linux unpacks the archives of an initrd one after
// the other, skipping the zeros between them.
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"

#include <string>

namespace svmkit::platform::qemu {

inline constexpr std::string_view kKexecImageName = "svmkit-kexec.img";

// Copies `in` whole to a new file `path` (mode 0600).
Result<void> copy_input(const InputFile& in, const std::string& path);
// The first stage's initrd with the image appended as kKexecImageName.
Result<void> write_first_stage_initrd(const InputFile& initrd, const InputFile& image,
                                      const std::string& path);

} // namespace svmkit::platform::qemu
