// Fuzz target: analysis of a user's kernel file (ELF vmlinux or raw image).
#include "format/kernel_input.hpp"

#include <sys/mman.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    int fd = ::memfd_create("fuzz-kernel", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    svmkit::UniqueFd owner(fd);
    if (::write(fd, data, size) != static_cast<ssize_t>(size))
        return 0;
    auto file = svmkit::InputFile::open("/proc/self/fd/" + std::to_string(fd));
    if (!file)
        return 0;
    auto shared = std::make_shared<const svmkit::InputFile>(std::move(*file));
    for (auto arch : {svmkit::format::Arch::x86_64, svmkit::format::Arch::ppc64le}) {
        auto k = svmkit::format::analyze_kernel(shared, arch, std::nullopt);
        if (k) // stream what it found, bounded by the 1 GiB cap the analysis enforces
            (void)svmkit::format::copy_and_hash(k->image, svmkit::signer::DigestAlgorithm::sha256,
                                                nullptr, 0);
    }
    return 0;
}
