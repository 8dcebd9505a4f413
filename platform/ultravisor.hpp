// The simulated ultravisor's enter-secure-mode check (UV_ESM).
//
// Order matters and follows the real ultravisor: every guest page is moved
// to secure backing FIRST, then everything is verified on the secure copy, so
// nothing the hypervisor changes after the call can affect the outcome (no
// time-of-check/time-of-use gap).
#pragma once

#include "base/error.hpp"
#include "format/esm_crypto.hpp"
#include "format/manifest.hpp"
#include "format/verify.hpp"
#include "platform/guest_ram.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace svmkit::platform {

// Why ESM failed: one cause each, finer than the public ultravisor's single
// U_PARAMETER (its own known-issues list asks for this).
enum class EsmFailure {
    none,
    already_secure,       // ESM called twice, or by a secure guest
    bad_fdt,              // the FDT passed in r5 is missing or malformed
    blob_missing,         // no /chosen linux,esm-blob-start/end
    blob_malformed,       // the blob is not a valid svmkit manifest
    no_signature,         // the manifest carries no signature
    no_trusted_signature, // no signature by a platform-trusted key
    bad_signature,        // a trusted key's signature does not verify
    revoked_key,          // a revoked key signed
    too_few_signatures,   // fewer distinct trusted signers than required
    rollback,             // security version below the platform minimum
    wrong_arch,           // the manifest is for another machine
    image_out_of_range,   // a component lies outside guest RAM at this kbase
    stub_digest_mismatch, // stub code or data
    kernel_digest_mismatch,
    initrd_digest_mismatch,
    cmdline_digest_mismatch,
    dtb_digest_mismatch,
    bootargs_mismatch, // /chosen/bootargs differs from the signed command line
    // The PEF ibm,esm nodes (platform/esm_check.hpp), checked when the blob
    // has lockboxes:
    esm_no_lockbox,             // no lockbox for this machine's key (or no key)
    esm_unwrap_failed,          // the matching lockbox does not decrypt with the key
    esm_auth_failed,            // AES-GCM tag mismatch: ciphertext, IV or MAC changed
    esm_digests_malformed,      // no digests, or the decrypted digests FDT is invalid
    esm_kernel_digest_mismatch, // the kernel's loadable image (or its size) differs
    esm_initrd_digest_mismatch, // the initrd differs (or is there when none was sealed)
    esm_bootargs_mismatch,      // /chosen/bootargs is not the sealed command line
};
std::string_view esm_failure_name(EsmFailure f);
// The ultracall return code the guest sees for a failure (the VM is then terminated).
long esm_failure_code(EsmFailure f);

struct DigestCheck {
    format::ComponentKind kind{};
    std::uint64_t address = 0; // where it was hashed (guest-physical)
    std::uint64_t size = 0;
    std::vector<std::byte> digest; // computed on the secure copy
    bool ok = false;
};

struct EsmResult {
    EsmFailure failure = EsmFailure::none;
    std::string message;
    std::uint64_t pages_secured = 0;
    std::vector<DigestCheck> digests;
    std::vector<signer::KeyId> trusted_signers;
    format::Manifest manifest;
    // With ibm,esm lockboxes: the lockbox that opened, and the decrypted
    // secret files for UV_ESMB_GET_FILE (the Ultravisor takes them out of
    // the result before anyone else sees it).
    std::string esm_lockbox;
    // Where that blob was: "image" (the ibm,esm nodes beside the manifest)
    // or "initrd:<cpio member>" (the archive prepended to the initrd).
    std::string esm_source;
    std::vector<std::string> esm_file_names; // the blob's secret files (names only)
    std::vector<format::EsmSecretFile> esm_files;
    // Where the guest resumes on success: r3 = fdt, r4 = kbase, r5 = 0.
    std::uint64_t resume_pc = 0;
    [[nodiscard]] bool ok() const { return failure == EsmFailure::none; }
};

struct EsmPolicy {
    format::VerifyPolicy verify;
    format::Arch machine_arch = format::host_arch();
    // The machine's private key (a stand-in for its TPM), which opens the
    // ibm,esm lockbox made for this machine; null: the machine has none.
    std::shared_ptr<const format::EsmKey> machine_key;
};

// UV_ESM(kbase, fdt). Errors are platform faults (I/O); verification
// failures are in the result.
Result<EsmResult> enter_secure_mode(GuestRam& memory, std::uint64_t kbase, std::uint64_t fdt,
                                    const EsmPolicy& policy);

} // namespace svmkit::platform
