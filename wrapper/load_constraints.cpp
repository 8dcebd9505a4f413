// The loader's answer, predicted on the host (wrapper/load_constraints.hpp).
#include "wrapper/load_constraints.hpp"

#include "platform/machine.hpp"
#include "platform/normal_boot.hpp"
#include "platform/platform_fdt.hpp"
#include "wrapper/hex_text.hpp"

#include <algorithm>

namespace svmkit::cli {

namespace {

// QEMU pseries boots the image itself: no boot loader reserves anything.
loader::BootConstraints pseries_constraints(std::uint64_t memory_size) {
    loader::BootConstraints bc{};
    bc.c.machine = loader::kMachinePpc64;
    bc.c.ram_start = 0;
    bc.c.ram_end = memory_size;
    bc.c.max_segment_size = loader::kBootLoaderMaxSegment;
    loader::add_reserved(&bc, {0, 0x10000}, loader::RangeKind::exception_vectors);
    loader::add_reserved(&bc,
                         {platform::kFirmwareFdtAddress,
                          platform::kFirmwareFdtAddress + platform::kPlatformFdtMaxSize},
                         loader::RangeKind::device_tree);
    loader::add_reserved(&bc, {platform::kGuestStackBase, platform::kGuestStackTop},
                         loader::RangeKind::stack);
    return bc;
}

} // namespace

Result<loader::BootConstraints> image_load_constraints(format::Arch arch, std::uint64_t memory_size,
                                                       LoadPath path, const std::string& image,
                                                       std::uint64_t image_size) {
    if (arch == format::Arch::ppc64le)
        return pseries_constraints(memory_size);
    SVM_TRY(program, platform::boot_loader_extent(memory_size));
    SVM_TRY(layout, platform::normal_boot_layout(memory_size, program, image,
                                                 path == LoadPath::kexec ? std::optional(image_size)
                                                                         : std::nullopt));
    return platform::normal_boot_constraints(layout);
}

void ElfFileSource::read(void* ctx, std::uint64_t offset, std::uint8_t* out, std::uint32_t n) {
    auto& self = *static_cast<ElfFileSource*>(ctx);
    auto bytes = std::as_writable_bytes(std::span(out, n));
    auto r = self.file_.read_at(offset, bytes);
    if (!r) {
        std::fill(bytes.begin(), bytes.end(), std::byte{0});
        if (!self.error_)
            self.error_ = r.error();
    }
}

std::string refusal_text(const loader::LoadRefusal& r) {
    if (r.segment == loader::kNoIndex)
        return "";
    std::string out = fmt::format("segment {} [{}, {})", r.segment, hex_address(r.segment_start),
                                  hex_address(r.segment_end));
    const auto kind = static_cast<loader::RangeKind>(r.range_kind);
    if (kind == loader::RangeKind::none)
        return out;
    out += kind == loader::RangeKind::guest_ram ? " lies outside " : " overlaps ";
    out += loader::range_kind_name(kind);
    if (kind == loader::RangeKind::segment)
        out += fmt::format(" {}", r.range_index);
    return out + fmt::format(" [{}, {})", hex_address(r.range_start), hex_address(r.range_end));
}

std::string refusal_line(const loader::LoadRefusal& r) {
    const auto e = static_cast<loader::ElfError>(r.error);
    std::string out =
        fmt::format("{} ({})", loader::elf_error_message(e), loader::elf_error_name(e));
    const std::string where = refusal_text(r);
    return where.empty() ? out : out + ": " + where;
}

Json refusal_json(const loader::LoadRefusal& r) {
    const auto e = static_cast<loader::ElfError>(r.error);
    Json j;
    j["error"] = loader::elf_error_name(e);
    j["message"] = loader::elf_error_message(e);
    j["text"] = refusal_line(r);
    if (r.segment == loader::kNoIndex) {
        j["segment"] = nullptr;
    } else {
        j["segment"] = {{"index", r.segment},
                        {"start", hex_address(r.segment_start)},
                        {"end", hex_address(r.segment_end)}};
    }
    const auto kind = static_cast<loader::RangeKind>(r.range_kind);
    if (kind == loader::RangeKind::none) {
        j["range"] = nullptr;
    } else {
        Json range;
        range["kind"] = loader::range_kind_id(kind);
        range["name"] = loader::range_kind_name(kind);
        if (kind == loader::RangeKind::segment)
            range["index"] = r.range_index;
        range["start"] = hex_address(r.range_start);
        range["end"] = hex_address(r.range_end);
        j["range"] = range;
    }
    return j;
}

} // namespace svmkit::cli
