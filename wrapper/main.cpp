// svmkit: build, sign, inspect and verify secure images.
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fmt/format.h>

#ifndef SVMKIT_VERSION
#define SVMKIT_VERSION "0.0.0"
#endif

namespace {

using namespace svmkit;
using namespace svmkit::cli;

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

int main(int argc, char** argv) {
    CLI::App app{"svmkit: build, sign, inspect and verify secure VM images for POWER PEF"};
    app.set_version_flag("--version", std::string("svmkit ") + SVMKIT_VERSION);
    app.require_subcommand(1);

    BuildOptions build;
    auto* b = app.add_subcommand(
        "build", "Package kernel, initrd, command line and dtb into a signed secure image");
    b->add_option("--kernel", build.kernel, "Kernel: ELF vmlinux or raw image")->required();
    b->add_option("--initrd", build.initrd, "Initial ramdisk (any file)");
    auto* cl = b->add_option("--cmdline", build.cmdline, "Kernel command line");
    auto* clf =
        b->add_option("--cmdline-file", build.cmdline_file, "File holding the kernel command line");
    cl->excludes(clf);
    b->add_option("--dtb", build.dtb, "Flattened device tree to pass to the kernel");
    b->add_option("--arch", build.arch, "Target: host (the simulated platform) or ppc64le")
        ->capture_default_str();
    b->add_option("--compress", build.compress, "Kernel compression: none or gzip")
        ->capture_default_str();
    b->add_option("--hash", build.hash, "Component digest: sha256, sha384 or sha512")
        ->capture_default_str();
    b->add_option("--security-version", build.security_version, "Anti-rollback security version")
        ->capture_default_str();
    b->add_option("--swiotlb-size", build.swiotlb_size, "Bounce-buffer pool size (e.g. 64M)")
        ->capture_default_str();
    b->add_option("--kernel-load-addr", build.kernel_load_addr,
                  "Load address of a raw (non-ELF) kernel image");
    b->add_flag("--unsigned", build.unsigned_image, "Build without signatures (sign later)");
    add_key_options(b, build.key);
    b->add_option("-o,--output", build.output, "Output image")->required();
    auto* esm_recipient =
        b->add_option("--esm-recipient", build.esm_recipients,
                      "PEF: RSA public key (a machine's TPM key) to get a lockbox; repeatable");
    b->add_option("--esm-origin", build.esm_origin,
                  "PEF: the image owner's RSA public key (origin-lockbox)")
        ->needs(esm_recipient);
    b->add_option("--esm-file", build.esm_files,
                  "PEF: secret file for UV_ESMB_GET_FILE, NAME=PATH; repeatable")
        ->needs(esm_recipient);
    b->add_option("--esm-blob", build.esm_blob,
                  "PEF: the nodes of a blob made by 'svmkit esm make'")
        ->excludes(esm_recipient);

    KeygenOptions keygen;
    auto* k = app.add_subcommand("keygen", "Generate a signing key pair");
    k->add_option("--algo", keygen.algo, "ed25519, ecdsa-p256, ecdsa-p384, rsa-3072 or rsa-4096")
        ->required();
    k->add_option("--out", keygen.out, "Private key output (PEM, mode 0600)")->required();
    k->add_option("--pub", keygen.pub, "Public key output (PEM)")->required();
    k->add_flag("--force", keygen.force, "Replace an existing private key");

    InspectOptions inspect;
    auto* in = app.add_subcommand("inspect", "Show everything inside an image");
    in->add_option("image", inspect.image, "Secure image")->required();
    in->add_flag("--json", inspect.json, "Machine-readable output");

    VerifyOptions verify;
    auto* v =
        app.add_subcommand("verify", "Check an image's digests and signatures against a policy");
    v->add_option("image", verify.image, "Secure image")->required();
    v->add_option("--trusted-key", verify.trusted_keys,
                  "Trusted public key or certificate (repeatable)")
        ->required();
    v->add_option("--revoked-key", verify.revoked_keys,
                  "Revoked key: key id (hex) or public key file");
    v->add_option("--require-signatures", verify.require_signatures,
                  "Distinct trusted signers required")
        ->capture_default_str();
    v->add_option("--min-security-version", verify.min_security_version,
                  "Refuse images with a lower security version")
        ->capture_default_str();
    v->add_flag("--json", verify.json, "Machine-readable report");

    ExtractOptions extract;
    auto* x = app.add_subcommand("extract", "Write one component's exact bytes to a file");
    x->add_option("image", extract.image, "Secure image")->required();
    x->add_option("--component", extract.component, "kernel, initrd, cmdline, dtb or manifest")
        ->required();
    x->add_option("-o,--output", extract.output, "Output file")->required();

    TbsOptions tbs;
    auto* t =
        app.add_subcommand("tbs", "Write the to-be-signed bytes of an image, or their digest");
    t->add_option("image", tbs.image, "Secure image")->required();
    t->add_option("-o,--output", tbs.output, "Output file");
    t->add_option("--digest", tbs.digest, "Only the digest: sha256, sha384 or sha512");
    t->add_flag("--hex", tbs.hex, "Print hex to stdout instead of writing a file");

    AttachOptions attach;
    auto* a =
        app.add_subcommand("attach", "Check a signature made elsewhere and add it to an image");
    a->add_option("image", attach.image, "Secure image")->required();
    a->add_option("--signature", attach.signature,
                  "Signature file (raw Ed25519, DER ECDSA, RSA-PSS)")
        ->required();
    a->add_option("--pubkey", attach.pubkey, "The signer's public key or certificate")->required();
    a->add_option("--algo", attach.algo, "Signature algorithm (default: the key's)");
    a->add_option("-o,--output", attach.output, "Output image")->required();

    // ---- boot (the simulated machine) ----
    BootOptions boot;
    auto* bt = app.add_subcommand(
        "boot", "Boot a secure image on the simulated PEF machine and report each stage");
    bt->add_option("image", boot.image,
                   "Secure image, booted firmware-style (leave out with --kexec, or to boot "
                   "grub-style from the --disk that holds a boot partition)");
    bt->add_option("--kexec", boot.kexec_image,
                   "Boot the normal-guest loader, which loads this secure image kexec-style "
                   "(docs/loader-boot.md)");
    bt->add_option("--entry", boot.boot_entry,
                   "Grub-style: the boot.cfg entry to boot instead of the default "
                   "(svmkit.boot_entry=NAME on the platform command line)");
    bt->add_option("--cmdline-extra", boot.cmdline_extra,
                   "Text appended to the platform command line the loader sees");
    bt->add_option("--trusted-key", boot.trusted_keys,
                   "Public key or certificate the ultravisor trusts (repeatable)")
        ->required();
    bt->add_option("--revoked-key", boot.revoked_keys,
                   "Revoked key: key id (hex) or public key file");
    bt->add_option("--require-signatures", boot.require_signatures,
                   "Distinct trusted signers the ultravisor requires")
        ->capture_default_str();
    bt->add_option("--min-security-version", boot.min_security_version,
                   "The ultravisor refuses images with a lower security version")
        ->capture_default_str();
    bt->add_option("--memory", boot.memory, "Guest RAM (e.g. 512M, 1G)")->capture_default_str();
    bt->add_option("--hv-hook", boot.hv_hooks,
                   "Test hook: play the hypervisor at an event, EVENT:ACTION "
                   "(docs/platform.md, \"Test hooks\"); repeatable");
    bt->add_option("--disk", boot.disks,
                   "A disk image the guest sees as a virtio-blk device; repeatable");
    bt->add_option("--backend", boot.backend,
                   "Who serves the disks over vhost-user: svmkit (svmkit-vhost-blk) or qemu "
                   "(qemu-storage-daemon)")
        ->capture_default_str();
    bt->add_option("--hostile", boot.hostile,
                   "Make svmkit-vhost-blk misbehave (tests; docs/vhost-user.md lists the modes)");
    bt->add_option("--hv-hook-log", boot.hv_hook_log, "Where the hooks' results go (JSON lines)");
    bt->add_option("--timeout", boot.timeout_seconds,
                   "Stop a guest running longer (seconds; 0: never)")
        ->capture_default_str();
    bt->add_flag("--json", boot.json, "Machine-readable report (the console goes to stderr)");
    bt->add_flag("--quiet", boot.quiet, "Do not stream the guest console");
    bt->add_option("--machine-key", boot.machine_key,
                   "The machine's RSA private key (stands in for its TPM): opens the image's "
                   "ibm,esm lockbox for this machine");
    // ---- end boot ----

    const EsmCommand esm = add_esm_command(app);
    // ---- loader (docs/loader.md) ----
    MkdiskOptions mkdisk;
    auto* md =
        app.add_subcommand("mkdisk", "Write a GPT boot disk with boot.cfg and secure images");
    md->add_option("-o,--output", mkdisk.output, "Output disk image")->required();
    md->add_option("--entry", mkdisk.entries, "Menu entry NAME=IMG[,cmdline=...]; repeatable")
        ->required();
    md->add_option("--default", mkdisk.default_entry, "The default entry (default: the first)");
    md->add_option("--size", mkdisk.size, "Whole disk size (e.g. 128M; default: boot + 64 MiB)");
    LoadOptions load;
    auto* ld = app.add_subcommand("load", "Show the kexec-style segment plan of an image");
    ld->add_option("image", load.image, "Secure image")->required();
    ld->add_flag("--plan", load.plan, "Dry run: print the plan, load nothing")->required();
    ld->add_flag("--json", load.json, "Machine-readable plan");
    ld->add_option("--arch", load.arch, "Platform: x86_64 or ppc64le (default: the image's)");
    ld->add_option("--memory", load.memory, "Guest RAM the plan must fit")->capture_default_str();
    // ---- end loader ----

    // A closed pipe on an output is an I/O error (exit 4), not a silent death.
    std::signal(SIGPIPE, SIG_IGN);
    const IoRegistry::Scope io_scope;
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "svmkit: usage error: %s\nRun 'svmkit --help' for usage.\n", e.what());
        return static_cast<int>(ExitCode::usage);
    }

    Result<int> result = 0;
    if (b->parsed())
        result = run_build(build);
    else if (k->parsed())
        result = run_keygen(keygen);
    else if (in->parsed())
        result = run_inspect(inspect);
    else if (v->parsed())
        result = run_verify(verify);
    else if (x->parsed())
        result = run_extract(extract);
    else if (t->parsed())
        result = run_tbs(tbs);
    else if (a->parsed())
        result = run_attach(attach);
    if (bt->parsed())
        result = run_boot(boot);
    if (esm.command->parsed())
        result = esm.run();
    if (md->parsed())
        result = run_mkdisk(mkdisk);
    if (ld->parsed())
        result = run_load(load);
    if (!result) {
        std::fprintf(stderr, "svmkit: error: %s\n", result.error().message.c_str());
        return static_cast<int>(result.error().code);
    }
    // Reports go to stdout through stdio; a full disk or closed pipe shows up
    // here once rather than at every printf (why cert-err33-c is off).
    if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
        std::fprintf(stderr, "svmkit: error: writing the output failed\n");
        return static_cast<int>(ExitCode::io);
    }
    return *result;
}
