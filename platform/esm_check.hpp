// The simulated ultravisor's check of the PEF ibm,esm nodes at UV_ESM, run on
// the secure copy after the signature policy and the manifest's own digests
// (platform/ultravisor.cpp, step 7; docs/esm.md):
//
//   1. the lockbox whose fingerprint is the machine key's, in any position
//      (the public ultravisor tries only lockbox-1)      else esm_no_lockbox
//   2. RSA-OAEP unwraps the 32-byte key                   else esm_unwrap_failed
//   3. AES-256-GCM opens /digest/digests-fdt              else esm_auth_failed
//      and it is a valid digests FDT                      else esm_digests_malformed
//   4. SHA-512 of the kernel's loadable image (inflated when stored gzip),
//      and its size, equal the sealed ones                else esm_kernel_digest_mismatch
//   5. the initrd's SHA-512 (or its absence; after the blob's
//      archive when the blob came from the initrd)          else esm_initrd_digest_mismatch
//   6. SHA-512 of /chosen/bootargs                        else esm_bootargs_mismatch
//   7. every secret file opens (GCM)                      else esm_auth_failed
//
// A sealed `rtas` digest is kept but not checked: the simulated machine has
// no RTAS image.
#pragma once

#include "format/esm_crypto.hpp"
#include "format/manifest.hpp"
#include "platform/guest_ram.hpp"
#include "platform/ultravisor.hpp"

#include <string>
#include <vector>

namespace svmkit::platform {

struct EsmCheck {
    EsmFailure failure = EsmFailure::none;
    std::string message;
    std::string lockbox;                      // the lockbox that opened
    std::vector<format::EsmSecretFile> files; // decrypted, for UV_ESMB_GET_FILE
};

// `m` was decoded from the secure copy and its components lie inside guest
// RAM at `kbase` (enter_secure_mode checked both); `blob` is its ibm,esm
// nodes, or the blob found in its initrd's leading cpio (platform/
// esm_initrd.hpp), in which case the sealed initrd digest covers the initrd
// from `initrd_skip` on; `bootargs` is /chosen's.
EsmCheck check_esm_nodes(GuestRam& memory, std::uint64_t kbase, const format::Manifest& m,
                         const format::EsmBlob& blob, std::uint64_t initrd_skip,
                         const std::string& bootargs, const format::EsmKey* machine_key);

} // namespace svmkit::platform
