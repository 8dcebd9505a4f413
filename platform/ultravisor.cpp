#include "platform/ultravisor.hpp"

#include "base/checked.hpp"
#include "format/dtb.hpp"
#include "format/manifest_fdt.hpp"
#include "guest/uv_abi.h"
#include "platform/esm_check.hpp"
#include "platform/esm_initrd.hpp"

#include <libfdt.h>
#include <thread>

namespace svmkit::platform {

std::string_view esm_failure_name(EsmFailure f) {
    switch (f) {
    case EsmFailure::none:
        return "none";
    case EsmFailure::already_secure:
        return "already-secure";
    case EsmFailure::bad_fdt:
        return "bad-fdt";
    case EsmFailure::blob_missing:
        return "blob-missing";
    case EsmFailure::blob_malformed:
        return "blob-malformed";
    case EsmFailure::no_signature:
        return "no-signature";
    case EsmFailure::no_trusted_signature:
        return "no-trusted-signature";
    case EsmFailure::bad_signature:
        return "bad-signature";
    case EsmFailure::revoked_key:
        return "revoked-key";
    case EsmFailure::too_few_signatures:
        return "too-few-signatures";
    case EsmFailure::rollback:
        return "rollback";
    case EsmFailure::wrong_arch:
        return "wrong-arch";
    case EsmFailure::image_out_of_range:
        return "image-out-of-range";
    case EsmFailure::stub_digest_mismatch:
        return "stub-digest-mismatch";
    case EsmFailure::kernel_digest_mismatch:
        return "kernel-digest-mismatch";
    case EsmFailure::initrd_digest_mismatch:
        return "initrd-digest-mismatch";
    case EsmFailure::cmdline_digest_mismatch:
        return "cmdline-digest-mismatch";
    case EsmFailure::dtb_digest_mismatch:
        return "dtb-digest-mismatch";
    case EsmFailure::bootargs_mismatch:
        return "bootargs-mismatch";
    case EsmFailure::esm_no_lockbox:
        return "esm-no-lockbox";
    case EsmFailure::esm_unwrap_failed:
        return "esm-unwrap-failed";
    case EsmFailure::esm_auth_failed:
        return "esm-auth-failed";
    case EsmFailure::esm_digests_malformed:
        return "esm-digests-malformed";
    case EsmFailure::esm_kernel_digest_mismatch:
        return "esm-kernel-digest-mismatch";
    case EsmFailure::esm_initrd_digest_mismatch:
        return "esm-initrd-digest-mismatch";
    case EsmFailure::esm_bootargs_mismatch:
        return "esm-bootargs-mismatch";
    }
    return "?";
}

long esm_failure_code(EsmFailure f) {
    switch (f) {
    case EsmFailure::none:
        return U_SUCCESS;
    case EsmFailure::already_secure:
        return U_PERMISSION;
    case EsmFailure::bad_fdt:
        return U_P3;
    default:
        return U_PARAMETER;
    }
}

namespace {

EsmFailure from_policy(format::PolicyFailure f) {
    switch (f) {
    case format::PolicyFailure::none:
        return EsmFailure::none;
    case format::PolicyFailure::no_signature:
        return EsmFailure::no_signature;
    case format::PolicyFailure::no_trusted_signature:
        return EsmFailure::no_trusted_signature;
    case format::PolicyFailure::bad_signature:
        return EsmFailure::bad_signature;
    case format::PolicyFailure::revoked_key:
        return EsmFailure::revoked_key;
    case format::PolicyFailure::too_few_signatures:
        return EsmFailure::too_few_signatures;
    case format::PolicyFailure::rollback:
        return EsmFailure::rollback;
    }
    return EsmFailure::blob_malformed;
}

EsmFailure digest_failure(format::ComponentKind k) {
    switch (k) {
    case format::ComponentKind::stub_text:
    case format::ComponentKind::stub_rodata:
        return EsmFailure::stub_digest_mismatch;
    case format::ComponentKind::kernel:
        return EsmFailure::kernel_digest_mismatch;
    case format::ComponentKind::initrd:
        return EsmFailure::initrd_digest_mismatch;
    case format::ComponentKind::cmdline:
        return EsmFailure::cmdline_digest_mismatch;
    case format::ComponentKind::dtb:
        return EsmFailure::dtb_digest_mismatch;
    }
    return EsmFailure::blob_malformed;
}

constexpr std::uint64_t kMaxFdtSize = 1u << 20;

std::uint64_t be_u64(const void* p, int len) {
    const auto* b = static_cast<const unsigned char*>(p);
    std::uint64_t v = 0;
    for (int i = 0; i < len; ++i)
        v = (v << 8) | b[i];
    return v;
}

} // namespace

Result<EsmResult> enter_secure_mode(GuestRam& memory, std::uint64_t kbase, std::uint64_t fdt_gpa,
                                    const EsmPolicy& policy) {
    EsmResult r;
    auto refuse = [&](EsmFailure f, std::string msg) -> Result<EsmResult> {
        r.failure = f;
        r.message = std::move(msg);
        return std::move(r);
    };
    if (memory.count(PageState::normal) != memory.page_count())
        return refuse(EsmFailure::already_secure, "UV_ESM from a guest that is already secure");

    // 1. Secure everything first; from here on only the secure copy is read.
    SVM_TRY(secured, memory.secure_all());
    r.pages_secured = secured;

    // 2. The device tree the guest passed.
    std::vector<std::byte> header(sizeof(fdt_header));
    if (!memory.read(fdt_gpa, header))
        return refuse(EsmFailure::bad_fdt,
                      fmt::format("FDT address {:#x} is outside guest RAM", fdt_gpa));
    const std::uint64_t fdt_size = fdt_totalsize(header.data());
    if (fdt_magic(header.data()) != FDT_MAGIC || fdt_size > kMaxFdtSize || fdt_size < header.size())
        return refuse(EsmFailure::bad_fdt, fmt::format("no valid device tree at {:#x}", fdt_gpa));
    std::vector<std::byte> fdt_bytes(fdt_size);
    if (!memory.read(fdt_gpa, fdt_bytes))
        return refuse(EsmFailure::bad_fdt, "the device tree runs past the end of guest RAM");
    const format::AlignedFdt fdt(fdt_bytes);
    if (int err = format::fdt_check_full_strict(fdt.data(), fdt.size()); err != 0)
        return refuse(EsmFailure::bad_fdt,
                      fmt::format("malformed device tree: {}", fdt_strerror(err)));
    const int chosen = fdt_path_offset(fdt.data(), "/chosen");
    int start_len = 0;
    int end_len = 0;
    const void* start_p =
        chosen >= 0 ? fdt_getprop(fdt.data(), chosen, "linux,esm-blob-start", &start_len) : nullptr;
    const void* end_p =
        chosen >= 0 ? fdt_getprop(fdt.data(), chosen, "linux,esm-blob-end", &end_len) : nullptr;
    if (start_p == nullptr || end_p == nullptr || (start_len != 8 && start_len != 4) ||
        (end_len != 8 && end_len != 4))
        return refuse(EsmFailure::blob_missing,
                      "/chosen has no linux,esm-blob-start/end: there is no ESM blob to verify");
    const std::uint64_t blob_start = be_u64(start_p, start_len);
    const std::uint64_t blob_end = be_u64(end_p, end_len);
    if (blob_end <= blob_start || blob_end - blob_start > format::kMaxManifestSize)
        return refuse(
            EsmFailure::blob_malformed,
            fmt::format("ESM blob range [{:#x}, {:#x}) is invalid", blob_start, blob_end));

    // 3. The manifest, decoded strictly from the secure copy.
    std::vector<std::byte> blob(blob_end - blob_start);
    if (!memory.read(blob_start, blob))
        return refuse(EsmFailure::blob_malformed, "the ESM blob lies outside guest RAM");
    auto manifest = format::decode_manifest_fdt(blob, "ESM blob");
    if (!manifest)
        return refuse(EsmFailure::blob_malformed, manifest.error().message);
    r.manifest = std::move(*manifest);
    const format::Manifest& m = r.manifest;
    if (m.arch != policy.machine_arch)
        return refuse(EsmFailure::wrong_arch, fmt::format("the image is for {}, this machine is {}",
                                                          format::arch_name(m.arch),
                                                          format::arch_name(policy.machine_arch)));

    // 4. Signatures and policy.
    format::PolicyVerdict verdict = format::evaluate_policy(m, policy.verify);
    for (const auto& s : verdict.signatures)
        if (s.status == format::SignerStatus::trusted && s.valid)
            r.trusted_signers.push_back(s.key_id);
    if (!verdict.ok())
        return refuse(from_policy(verdict.failure), verdict.message);

    // 5. Every component, hashed where it sits in the (secure) loaded image.
    //    Ranges are checked first; large components are hashed in parallel
    //    (the kernel and the initrd each on a CPU), results taken in order.
    std::vector<std::span<std::byte>> ranges;
    for (const format::Component& c : m.components) {
        const auto at = checked_add(kbase, c.address - m.image_base);
        auto bytes = at ? memory.range(*at, c.size) : fail(ExitCode::malformed, "overflow");
        if (!bytes)
            return refuse(EsmFailure::image_out_of_range,
                          fmt::format("component {} at kbase {:#x} lies outside guest RAM",
                                      format::component_name(c.kind), kbase));
        r.digests.push_back(DigestCheck{c.kind, *at, c.size, {}, false});
        ranges.push_back(*bytes);
    }
    {
        constexpr std::uint64_t kParallelThreshold = 4u << 20;
        std::vector<std::jthread> workers;
        for (std::size_t i = 0; i < ranges.size(); ++i) {
            auto job = [&, i] {
                r.digests[i].digest = signer::digest(m.hash, ranges[i]);
            };
            if (ranges[i].size() >= kParallelThreshold)
                workers.emplace_back(job);
            else
                job();
        }
    }
    for (std::size_t i = 0; i < r.digests.size(); ++i) {
        DigestCheck& d = r.digests[i];
        const format::Component& c = m.components[i];
        d.ok = d.digest == c.digest;
        if (!d.ok) {
            r.digests.resize(i + 1); // report the checks up to the first mismatch
            return refuse(digest_failure(c.kind),
                          fmt::format("{} digest mismatch at {:#x}: signed {}, found {}",
                                      format::component_name(c.kind), d.address,
                                      format::hex(c.digest), format::hex(d.digest)));
        }
    }

    // 6. The command line the kernel will see is the signed one.
    std::string signed_cmdline;
    if (const format::Component* c = m.find(format::ComponentKind::cmdline)) {
        auto bytes = memory.range(kbase + (c->address - m.image_base), c->size);
        signed_cmdline.assign(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    }
    int args_len = 0;
    const char* args =
        static_cast<const char*>(fdt_getprop(fdt.data(), chosen, "bootargs", &args_len));
    std::string bootargs;
    if (args != nullptr && args_len > 0)
        bootargs.assign(args,
                        static_cast<std::size_t>(args_len) - (args[args_len - 1] == '\0' ? 1 : 0));
    if (bootargs != signed_cmdline)
        return refuse(EsmFailure::bootargs_mismatch,
                      fmt::format("/chosen/bootargs \"{}\" is not the signed command line \"{}\"",
                                  bootargs, signed_cmdline));

    // 7. The PEF ibm,esm nodes: the machine's lockbox, the sealed digests
    //    against the secure copy, the secret files. The image's own nodes;
    //    without them, a blob in a cpio prepended to the initrd (svm-tools'
    //    way; platform/esm_initrd.hpp), as the public ultravisor looks for
    //    one after the wrapper's.
    const format::EsmBlob* esm_blob = &m.esm;
    std::uint64_t initrd_skip = 0;
    std::optional<InitrdEsmBlob> in_initrd;
    const format::Component* initrd = m.find(format::ComponentKind::initrd);
    if (m.esm.lockboxes.empty() && initrd != nullptr) {
        // In range: step 5 checked every component.
        auto bytes = memory.range(kbase + (initrd->address - m.image_base), initrd->size);
        auto found = find_initrd_esm_blob(*bytes, "the initrd");
        if (!found)
            return refuse(EsmFailure::esm_digests_malformed, found.error().message);
        in_initrd = std::move(*found);
        if (in_initrd) {
            esm_blob = &in_initrd->blob;
            initrd_skip = in_initrd->payload_offset;
            r.esm_source = "initrd:" + in_initrd->path;
        }
    }
    if (!esm_blob->lockboxes.empty()) {
        EsmCheck esm = check_esm_nodes(memory, kbase, m, *esm_blob, initrd_skip, bootargs,
                                       policy.machine_key.get());
        if (esm.failure != EsmFailure::none)
            return refuse(esm.failure, std::move(esm.message));
        r.esm_lockbox = std::move(esm.lockbox);
        r.esm_files = std::move(esm.files);
        for (const format::EsmFile& f : esm_blob->files)
            r.esm_file_names.push_back(f.name);
        if (r.esm_source.empty())
            r.esm_source = "image";
    }

    r.resume_pc = kbase + (m.entry - m.image_base);
    return r;
}

} // namespace svmkit::platform
