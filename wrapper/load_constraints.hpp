// The loader's answer for an image, predicted on the host with the loader's
// own code: its constraints (loader/boot_layout.h, from what the firmware
// will give it, platform/normal_boot.hpp), its plan (loader/elf_plan.h) read
// from the file in small pieces, and a refusal in words that name the
// segment and the range it hits. `svmkit load --plan`, `svmkit mkdisk` and
// `svmkit boot`'s report share it (docs/loader.md, "Memory the loader keeps
// clear").
#pragma once

#include "base/error.hpp"
#include "base/file.hpp"
#include "format/arch.hpp"
#include "loader/boot_layout.h"
#include "loader/elf_plan.h"
#include "wrapper/json.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace svmkit::cli {

// How the image reaches its loader.
enum class LoadPath {
    kexec, // handed over in a buffer at the top of RAM (`svmkit boot --kexec`)
    disk,  // read from a boot disk (`svmkit mkdisk`, `svmkit boot --disk`)
};

// The constraints the image's loader applies. x86_64 (the simulated
// machine): the boot loader's, under the firmware's layout for `path` (the
// boot loader's ELF is read for where it lies). ppc64le (QEMU pseries, booted
// by its firmware): RAM, the first 64 KiB (exception vectors; kexec copies
// the image's first 0x100 bytes to 0), the firmware's FDT and stack.
Result<loader::BootConstraints> image_load_constraints(format::Arch arch, std::uint64_t memory_size,
                                                       LoadPath path, const std::string& image,
                                                       std::uint64_t image_size);

// An InputFile as the loader's ElfSource: reads only what is asked (the plan
// asks for headers, a digest for one chunk at a time), so a 2 GiB image costs
// no more memory than a small one. A read error is kept and given by error().
class ElfFileSource {
  public:
    explicit ElfFileSource(const InputFile& file) : file_(file) {}
    [[nodiscard]] loader::ElfSource source() { return {file_.size(), &read, this}; }
    [[nodiscard]] const std::optional<Error>& error() const { return error_; }

  private:
    static void read(void* ctx, std::uint64_t offset, std::uint8_t* out, std::uint32_t n);
    const InputFile& file_;
    std::optional<Error> error_;
};

// "segment 2 [0x4050000, 0x8650000) overlaps the boot loader [0x8000000,
// 0x8031000)", or "" when the refusal is not about one segment: the words the
// boot loader prints on its console.
std::string refusal_text(const loader::LoadRefusal& r);
// "<message> (<name>)[: <refusal_text>]".
std::string refusal_line(const loader::LoadRefusal& r);
// {"error", "message", "segment": {index, start, end} | null,
//  "range": {kind, name, [index], start, end} | null}.
Json refusal_json(const loader::LoadRefusal& r);

} // namespace svmkit::cli
