// The other place the PEF ultravisor finds an ibm,esm blob: the first file of
// a newc cpio archive prepended to the initrd, as svm-tools makes it
// (docs/esm.md,
// "The blob in the initrd"). The ultravisor uses it when the image has no
// ibm,esm nodes of its own; the sealed initrd digest then covers only what
// follows the archive (its trailer's end rounded up to 512 bytes).
#pragma once

#include "base/error.hpp"
#include "format/esm_blob.hpp"
#include "format/image_reader.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace svmkit::platform {

inline constexpr std::string_view kEsmCpioPrefix = "opt/ibm/pef";

struct InitrdEsmBlob {
    format::EsmBlob blob;
    std::string path;             // the archive member holding it
    std::uint64_t payload_offset; // where the sealed initrd starts (a multiple of 512)
};

// nullopt when the initrd does not start with a well-formed newc archive
// whose first file with data lies under opt/ibm/pef (an ordinary initramfs,
// or anything else, is just an initrd). An error (ExitCode::malformed, naming
// `where` and the member) when it does but that file is not a valid blob, or
// the archive is not padded to 512 bytes (the initrd proper may be empty).
// `initrd` may be a prefix of the initrd (`svmkit inspect` reads only its
// head): `initrd_size` is the whole size (0: initrd.size()).
Result<std::optional<InitrdEsmBlob>> find_initrd_esm_blob(std::span<const std::byte> initrd,
                                                          const std::string& where,
                                                          std::uint64_t initrd_size = 0);

// The same on an image file's initrd component (its first 16 MiB are read:
// svm-tools' archive is a few KiB; a longer one is not looked into).
// nullopt when the image has no initrd or no such archive.
Result<std::optional<InitrdEsmBlob>> find_image_initrd_esm_blob(const format::SecureImage& image);

} // namespace svmkit::platform
