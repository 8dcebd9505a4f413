#include "platform/esm_initrd.hpp"

#include "format/image_layout.hpp"
#include "loader/disk_layout.h"

#include <cstring>

namespace svmkit::platform {

namespace {

constexpr std::uint64_t kInitrdAlign = 512; // the ultravisor's rounding of the archive

bool read_span(void* ctx, std::uint64_t offset, void* buf, std::uint64_t size) {
    const auto& bytes = *static_cast<const std::span<const std::byte>*>(ctx);
    if (offset > bytes.size() || size > bytes.size() - offset)
        return false;
    std::memcpy(buf, bytes.data() + offset, size);
    return true;
}

} // namespace

Result<std::optional<InitrdEsmBlob>> find_initrd_esm_blob(std::span<const std::byte> initrd,
                                                          const std::string& where,
                                                          std::uint64_t initrd_size) {
    if (initrd_size == 0)
        initrd_size = initrd.size();
    std::span<const std::byte> bytes = initrd;
    loader::CpioLead lead{};
    const loader::BootPartition whole{0, initrd.size()};
    if (initrd.size() < 6 || std::memcmp(initrd.data(), "070701", 6) != 0 ||
        loader::read_cpio_lead(read_span, &bytes, whole, &lead) != loader::DiskError::none)
        return std::nullopt;
    const std::string_view name(lead.name);
    if (name.substr(0, kEsmCpioPrefix.size()) != kEsmCpioPrefix)
        return std::nullopt;
    const std::string member = fmt::format("{} (cpio member {})", where, name);
    // lead.end <= initrd.size() (the walk keeps it inside): no overflow.
    const std::uint64_t payload = (lead.end + kInitrdAlign - 1) / kInitrdAlign * kInitrdAlign;
    if (payload > initrd_size)
        return fail(ExitCode::malformed,
                    "{}: the ESM blob's archive is not padded to a multiple of 512 bytes "
                    "({} bytes in an initrd of {})",
                    member, lead.end, initrd_size);
    SVM_TRY(blob,
            format::decode_esm_blob(initrd.subspan(lead.file.data_offset, lead.file.size), member));
    return InitrdEsmBlob{std::move(blob), std::string(name), payload};
}

Result<std::optional<InitrdEsmBlob>> find_image_initrd_esm_blob(const format::SecureImage& image) {
    constexpr std::uint64_t kInitrdHead = 16u << 20;
    const format::Manifest& m = image.manifest;
    const format::Component* initrd = m.find(format::ComponentKind::initrd);
    if (initrd == nullptr)
        return std::nullopt;
    std::vector<std::byte> head(std::min(initrd->size, kInitrdHead));
    SVM_CHECK(image.file->read_at(format::image_file_offset(m.image_base, initrd->address), head));
    return find_initrd_esm_blob(head, image.path() + ": the initrd", initrd->size);
}

} // namespace svmkit::platform
