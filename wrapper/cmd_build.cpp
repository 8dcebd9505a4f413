// svmkit build: inputs -> one signed secure image.
#include "wrapper/commands.hpp"

#include "base/checked.hpp"
#include "base/file_identity.hpp"
#include "wrapper/arch_option.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include "format/dtb.hpp"
#include "format/esm_blob.hpp"
#include "format/image_writer.hpp"
#include "format/kernel_input.hpp"
#include "platform/normal_boot.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace svmkit::cli {

namespace {

// Linux's COMMAND_LINE_SIZE on powerpc and x86 is 2048 including the NUL.
constexpr std::size_t kMaxCmdline = 2047;

Result<std::string> read_cmdline(const BuildOptions& o) {
    std::string cmdline;
    std::string where = "--cmdline";
    if (o.cmdline) {
        cmdline = *o.cmdline;
    } else if (o.cmdline_file) {
        where = *o.cmdline_file;
        SVM_TRY(bytes, read_small_file(*o.cmdline_file, 1 << 20));
        cmdline.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        // Files conventionally end with a newline; it is not part of the command line.
        if (cmdline.ends_with("\r\n"))
            cmdline.resize(cmdline.size() - 2);
        else if (cmdline.ends_with('\n'))
            cmdline.pop_back();
    }
    if (cmdline.find('\0') != std::string::npos)
        return fail(ExitCode::malformed, "{}: the command line contains a NUL byte", where);
    if (cmdline.size() > kMaxCmdline)
        return fail(ExitCode::malformed,
                    "{}: the command line is {} bytes; Linux accepts at most {}", where,
                    cmdline.size(), kMaxCmdline);
    return cmdline;
}

Result<std::vector<std::byte>> read_dtb(const std::string& path) {
    SVM_TRY(bytes, read_small_file(path, 16u << 20));
    SVM_CHECK(format::check_device_tree(bytes, path));
    return bytes;
}

Result<std::uint64_t> creation_time() {
    const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
    if (epoch == nullptr || *epoch == '\0')
        return static_cast<std::uint64_t>(std::time(nullptr));
    auto v = parse_u64(epoch, "SOURCE_DATE_EPOCH");
    if (!v)
        return fail(ExitCode::usage, "SOURCE_DATE_EPOCH='{}' is not a number of seconds", epoch);
    return *v;
}

// The simulated machine's firmware (`svmkit boot`, the image's only platform
// for the host arch) keeps its device tree and stack at fixed addresses and
// lists them in /memreserve/; the stub refuses a kernel load range over them
// at boot. Known now, so refused now, before anything is written.
Result<void> check_kernel_clear_of_firmware(const format::KernelPlacement& kp, format::Arch arch,
                                            const std::string& kernel_path) {
    if (arch != format::Arch::x86_64)
        return {}; // ppc64le: the firmware (SLOF, GRUB, a kexec) places them at boot
    for (const platform::AvoidRange& r : platform::firmware_ranges())
        if (ranges_overlap(kp.load_address, kp.memory_size, r.base, r.size))
            return fail(ExitCode::malformed,
                        "{}: the kernel's load range [{:#x}, {:#x}) overlaps {} [{:#x}, {:#x}) "
                        "of the simulated machine; its firmware-style boot would refuse it. "
                        "Link or place the kernel elsewhere (--kernel-load-addr)",
                        kernel_path, kp.load_address, kp.load_address + kp.memory_size, r.name,
                        r.base, r.base + r.size);
    return {};
}

} // namespace

Result<std::vector<signer::PrivateKey>> load_private_keys(const KeyOptions& k) {
    signer::PassphraseSource pass{k.passphrase_env, k.passphrase_file};
    signer::Pkcs11Options pkcs11{k.pkcs11_module, k.pkcs11_pin_env};
    std::vector<signer::PrivateKey> keys;
    for (const std::string& path : k.keys) {
        SVM_TRY(key, signer::PrivateKey::load(path, pass, pkcs11));
        keys.push_back(std::move(key));
    }
    return keys;
}

Result<int> run_build(const BuildOptions& o) {
    SVM_CHECK(require_value(o.output, "-o/--output"));
    SVM_TRY(arch, resolve_arch(o.arch, o.kernel));
    auto hash = signer::parse_digest_name(o.hash);
    if (!hash)
        return fail(ExitCode::usage, "--hash: unknown digest '{}' (sha256, sha384 or sha512)",
                    o.hash);
    auto compression = format::parse_compression_name(o.compress);
    if (!compression)
        return fail(ExitCode::usage, "--compress: unknown compression '{}' (none or gzip)",
                    o.compress);
    SVM_TRY(swiotlb, parse_size(o.swiotlb_size, "--swiotlb-size"));
    std::optional<std::uint64_t> load_addr;
    if (o.kernel_load_addr) {
        SVM_TRY(v, parse_u64(*o.kernel_load_addr, "--kernel-load-addr"));
        load_addr = v;
    }
    if (o.unsigned_image && !o.key.keys.empty())
        return fail(ExitCode::usage, "--unsigned and --key exclude each other");
    if (!o.unsigned_image && o.key.keys.empty())
        return fail(ExitCode::usage,
                    "no signing key: give --key KEY (or --unsigned to sign later)");
    SVM_TRY(when, creation_time());

    // Keys first: a wrong passphrase should fail before minutes of hashing.
    SVM_TRY(keys, load_private_keys(o.key));
    SVM_TRY(stub, format::embedded_stub(arch));

    format::ImageBuildRequest req;
    req.arch = arch;
    req.stub = std::move(stub);
    req.security_version = o.security_version;
    req.creation_time = when;
    req.swiotlb_size = swiotlb;
    req.hash = *hash;
    req.output_path = o.output;
    for (const auto& key : keys)
        req.keys.push_back(&key);

    SVM_TRY(kfile, InputFile::open(o.kernel));
    auto kernel_file = std::make_shared<const InputFile>(std::move(kfile));
    SVM_TRY(kernel, format::analyze_kernel(kernel_file, arch, load_addr));
    SVM_CHECK(check_kernel_clear_of_firmware(kernel.placement, arch, o.kernel));
    const format::PayloadSource kernel_image = kernel.image; // for the ESM digests
    format::ComponentInput kin;
    kin.kind = format::ComponentKind::kernel;
    kin.kernel = kernel.placement;
    if (*compression == format::Compression::gzip) {
        SVM_TRY(packed, format::gzip_payload(kernel.image, *hash));
        kin.stored = std::move(packed.stored);
        kin.compression = format::Compression::gzip;
        kin.unpacked_size = kernel.image.size;
        kin.unpacked_digest = std::move(packed.unpacked_digest);
    } else {
        kin.stored = std::move(kernel.image);
    }
    req.payloads.push_back(std::move(kin));

    std::optional<format::PayloadSource> initrd;
    if (o.initrd) {
        SVM_TRY(f, InputFile::open(*o.initrd));
        if (f.size() == 0)
            return fail(ExitCode::malformed, "{}: initrd file is empty", *o.initrd);
        format::ComponentInput in;
        in.kind = format::ComponentKind::initrd;
        in.stored =
            format::PayloadSource::from_file(std::make_shared<const InputFile>(std::move(f)));
        initrd = in.stored;
        req.payloads.push_back(std::move(in));
    }
    SVM_TRY(cmdline, read_cmdline(o));
    if (!cmdline.empty()) {
        format::ComponentInput in;
        in.kind = format::ComponentKind::cmdline;
        in.stored = format::PayloadSource::from_memory(
            "command line",
            std::vector<std::byte>(reinterpret_cast<const std::byte*>(cmdline.data()),
                                   reinterpret_cast<const std::byte*>(cmdline.data()) +
                                       cmdline.size()));
        req.payloads.push_back(std::move(in));
    }
    if (o.dtb) {
        SVM_TRY(dtb, read_dtb(*o.dtb));
        format::ComponentInput in;
        in.kind = format::ComponentKind::dtb;
        in.stored = format::PayloadSource::from_memory(*o.dtb, std::move(dtb));
        req.payloads.push_back(std::move(in));
    }

    SVM_TRY(esm, build_esm_nodes(o, kernel_image, initrd, cmdline));
    req.esm = std::move(esm);

    SVM_TRY(built, format::build_image(req));
    if (o.json) {
        Json j;
        j["schema"] = "svmkit-build-v1";
        j["output"] = o.output;
        j["arch"] = format::arch_name(arch);
        j["size"] = built.file_size;
        j["components"] = Json::array();
        for (const auto& c : built.manifest.components)
            j["components"].push_back(format::component_name(c.kind));
        j["signatures"] = Json::array();
        for (const auto& s : built.manifest.signatures)
            j["signatures"].push_back({{"key_id", signer::key_id_hex(s.key_id)},
                                       {"algorithm", signer::algorithm_name(s.algorithm)}});
        print_json(j, human_stream());
        return 0;
    }
    std::fprintf(human_stream(),
                 "wrote %s: %s image, %zu components, %zu signature%s, %llu bytes\n",
                 o.output.c_str(), std::string(format::arch_name(arch)).c_str(),
                 built.manifest.components.size(), built.manifest.signatures.size(),
                 built.manifest.signatures.size() == 1 ? "" : "s",
                 static_cast<unsigned long long>(built.file_size));
    return 0;
}

namespace {

void add_key_options(CLI::App* cmd, KeyOptions& k) {
    cmd->add_option("--key", k.keys,
                    "Private key file (PEM or DER) or PKCS#11 URI; repeat for several signatures");
    cmd->add_option("--key-passphrase-env", k.passphrase_env,
                    "Environment variable holding the passphrase of an encrypted key");
    cmd->add_option("--key-passphrase-file", k.passphrase_file,
                    "File whose first line is the passphrase of an encrypted key");
    cmd->add_option("--pkcs11-module", k.pkcs11_module,
                    "PKCS#11 module for pkcs11: keys (default: $SVMKIT_PKCS11_MODULE)");
    cmd->add_option("--pkcs11-pin-env", k.pkcs11_pin_env,
                    "Environment variable holding the token PIN (default: SVMKIT_PKCS11_PIN)");
}

} // namespace

Command add_build_command(CLI::App& app) {
    auto o = std::make_shared<BuildOptions>();
    auto* b = app.add_subcommand(
        "build", "Package kernel, initrd, command line and dtb into a signed secure image");
    b->add_option("--kernel", o->kernel, "Kernel: ELF vmlinux or raw image ('-': stdin)")
        ->required();
    b->add_option("--initrd", o->initrd, "Initial ramdisk (any file; '-': stdin)");
    auto* cl = b->add_option("--cmdline", o->cmdline, "Kernel command line");
    auto* clf = b->add_option("--cmdline-file", o->cmdline_file,
                              "File holding the kernel command line (a pipe or FIFO too)");
    cl->excludes(clf);
    b->add_option("--dtb", o->dtb, "Flattened device tree to pass to the kernel");
    b->add_option("--arch", o->arch,
                  "Target: host, x86_64 or ppc64le (default: the kernel ELF's machine, else host)");
    b->add_option("--compress", o->compress, "Kernel compression: none or gzip")
        ->capture_default_str();
    b->add_option("--hash", o->hash, "Component digest: sha256, sha384 or sha512")
        ->capture_default_str();
    b->add_option("--security-version", o->security_version, "Anti-rollback security version")
        ->capture_default_str();
    b->add_option("--swiotlb-size", o->swiotlb_size, "Bounce-buffer pool size (e.g. 64M)")
        ->capture_default_str();
    b->add_option("--kernel-load-addr", o->kernel_load_addr,
                  "Load address of a raw (non-ELF) kernel image");
    b->add_flag("--unsigned", o->unsigned_image, "Build without signatures (sign later)");
    add_key_options(b, o->key);
    b->add_option("-o,--output", o->output, "Output image ('-': stdout)")->required();
    auto* esm_recipient =
        b->add_option("--esm-recipient", o->esm_recipients,
                      "PEF: RSA public key (a machine's TPM key) to get a lockbox; repeatable");
    b->add_option("--esm-origin", o->esm_origin,
                  "PEF: the image owner's RSA public key (origin-lockbox)")
        ->needs(esm_recipient);
    b->add_option("--esm-file", o->esm_files,
                  "PEF: secret file for UV_ESMB_GET_FILE, NAME=PATH; repeatable")
        ->needs(esm_recipient);
    b->add_option("--esm-blob", o->esm_blob, "PEF: the nodes of a blob made by 'svmkit esm make'")
        ->excludes(esm_recipient);
    add_json_flag(b, o->json, "What was written");
    return {b, [o] { return run_build(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
