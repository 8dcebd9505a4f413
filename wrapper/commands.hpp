// The svmkit subcommands. Each takes its parsed options and returns a Result;
// main.cpp maps errors to the documented exit codes.
#pragma once

#include "base/error.hpp"
#include "signer/signer.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace svmkit::format {
struct VerifyPolicy;
struct EsmBlob;
struct PayloadSource;
} // namespace svmkit::format
namespace CLI {
class App;
}

namespace svmkit::cli {

struct KeyOptions {
    std::vector<std::string> keys; // key files, or PKCS#11 URIs ("pkcs11:token=...;object=...")
    std::optional<std::string> passphrase_env;
    std::optional<std::string> passphrase_file;
    std::optional<std::string> pkcs11_module;  // else $SVMKIT_PKCS11_MODULE / $PKCS11_MODULE_PATH
    std::optional<std::string> pkcs11_pin_env; // else $SVMKIT_PKCS11_PIN (or the URI's pin-source)
};

struct BuildOptions {
    std::string kernel;
    std::optional<std::string> initrd;
    std::optional<std::string> cmdline;
    std::optional<std::string> cmdline_file;
    std::optional<std::string> dtb;
    std::string arch; // empty: the kernel ELF's machine, else the host
    std::string compress = "none";
    std::string hash = "sha256";
    std::uint64_t security_version = 0;
    std::string swiotlb_size = "64M";
    std::optional<std::string> kernel_load_addr;
    bool unsigned_image = false;
    KeyOptions key;
    std::string output;
    // PEF ibm,esm nodes beside the manifest (docs/esm.md): lockboxes for
    // these RSA public keys, encrypted digests of this image's kernel, initrd
    // and command line, encrypted NAME=PATH secret files; or a whole blob
    // made by `svmkit esm make`.
    std::vector<std::string> esm_recipients;
    std::optional<std::string> esm_origin;
    std::vector<std::string> esm_files;
    std::optional<std::string> esm_blob;
    bool json = false;
};
Result<int> run_build(const BuildOptions& o);
Result<std::vector<signer::PrivateKey>> load_private_keys(const KeyOptions& k);

struct KeygenOptions {
    std::string algo;
    std::string out;
    std::string pub;
    bool force = false; // replace an existing private key
    bool json = false;
};
Result<int> run_keygen(const KeygenOptions& o);

struct InspectOptions {
    std::string image;
    bool json = false;
};
Result<int> run_inspect(const InspectOptions& o);

struct VerifyOptions {
    std::string image;
    std::vector<std::string> trusted_keys;
    std::vector<std::string> revoked_keys; // key ids (hex) or public key files
    std::size_t require_signatures = 1;
    std::uint64_t min_security_version = 0;
    bool json = false;
};
Result<int> run_verify(const VerifyOptions& o);

struct ExtractOptions {
    std::string image;
    std::string component;
    std::string output;
    bool json = false;
};
Result<int> run_extract(const ExtractOptions& o);

struct TbsOptions {
    std::string image;
    std::optional<std::string> output;
    std::optional<std::string> digest; // sha256 | sha384 | sha512: only the digest
    bool hex = false;                  // print hex to stdout instead of writing a file
    bool json = false;
};
Result<int> run_tbs(const TbsOptions& o);

struct AttachOptions {
    std::string image;
    std::string signature;
    std::string pubkey;
    std::optional<std::string> algo;
    std::string output;
    bool json = false;
};
Result<int> run_attach(const AttachOptions& o);

// The verification policy shared by `verify` and `boot` (wrapper/policy_options.cpp):
// trusted keys (files), revoked keys (key ids in hex or public key files),
// distinct trusted signers required (>= 1, at most the distinct trusted keys),
// minimum security version.
Result<format::VerifyPolicy> load_verify_policy(const std::vector<std::string>& trusted_keys,
                                                const std::vector<std::string>& revoked_keys,
                                                std::size_t require_signatures,
                                                std::uint64_t min_security_version);

// svmkit boot (wrapper/cmd_boot.cpp): boots an image on the simulated machine.
struct BootOptions {
    std::string image;
    std::vector<std::string> trusted_keys; // the platform's trust store
    std::vector<std::string> revoked_keys;
    std::size_t require_signatures = 1;
    std::uint64_t min_security_version = 0;
    std::string memory = "1G";
    std::uint64_t timeout_seconds = 60; // 0: no limit
    bool json = false;
    bool quiet = false; // do not stream the guest console
    // Test hooks run inside the hypervisor process (platform/hv_hooks.hpp).
    std::vector<std::string> hv_hooks;
    std::string hv_hook_log; // JSON lines, written atomically at the end
    // virtio-blk disks and their vhost-user back end.
    std::vector<std::string> disks;
    std::string backend = "svmkit";
    std::string hostile; // svmkit-vhost-blk --hostile MODE (tests)
    // The machine's RSA private key (its TPM's), for ibm,esm lockboxes.
    std::optional<std::string> machine_key;
    // Normal-guest boot through the boot loader (docs/loader-boot.md):
    // kexec-style with an image, or grub-style from a disk (no image at all).
    std::string kexec_image;
    std::string boot_entry;    // svmkit.boot_entry=NAME on the platform command line
    std::string cmdline_extra; // appended to the platform command line
    // ppc64le images boot on QEMU pseries with the ultravisor attached; with
    // --kexec, a first-stage kernel and initramfs that kexec the image.
    std::string first_stage_kernel;
    std::string first_stage_initrd;
    std::string first_stage_cmdline = "console=hvc0";
    unsigned cpus = 1;
};
Result<int> run_boot(const BootOptions& o);

// The ibm,esm nodes `svmkit build` puts in an image (empty when no --esm-*
// option was given), from the image's own kernel loadable image, initrd and
// command line.
Result<format::EsmBlob> build_esm_nodes(const BuildOptions& o,
                                        const format::PayloadSource& kernel_image,
                                        const std::optional<format::PayloadSource>& initrd,
                                        const std::string& cmdline);
// svmkit mkdisk (wrapper/cmd_mkdisk.cpp): a GPT boot disk for the grub-style
// loader (docs/loader.md).
struct MkdiskOptions {
    std::string output;
    std::vector<std::string> entries; // NAME=IMG[,cmdline=...]
    std::optional<std::string> default_entry;
    std::optional<std::string> size; // whole disk, e.g. 128M
    bool json = false;
};
Result<int> run_mkdisk(const MkdiskOptions& o);

// svmkit load --plan (wrapper/cmd_load.cpp): the kexec-style segment plan.
// Exit 3 (malformed) when the loader rejects the image.
struct LoadOptions {
    std::string image;
    bool plan = false;
    bool json = false;
    std::string arch;          // empty: from the image's e_machine
    std::string memory = "1G"; // guest RAM the plan must fit
};
Result<int> run_load(const LoadOptions& o);

// "64M", "1G", "65536", "0x100000" -> bytes.
Result<std::uint64_t> parse_size(const std::string& text, const std::string& option);
Result<std::uint64_t> parse_u64(const std::string& text, const std::string& option);

} // namespace svmkit::cli
