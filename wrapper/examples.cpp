#include "wrapper/examples.hpp"

#include "wrapper/cli_definition.hpp"
#include "wrapper/man_page.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>

namespace svmkit::cli {

namespace {

struct CommandExamples {
    std::string_view path;
    std::span<const Example> examples;
};

constexpr Example kSvmkit[] = {
    {"Make a key pair, then package, sign and check an image.",
     "svmkit keygen --algo ed25519 -o release.key --public-output release.pub"},
    {"", "svmkit build --kernel vmlinux --initrd initrd.img --cmdline 'console=hvc0 svm=on' "
         "--key release.key -o secure.img"},
    {"", "svmkit verify secure.img --trusted-key release.pub"},
    {"Show the options of one command.", "svmkit help esm make"},
};

constexpr Example kHelp[] = {
    {"The list of commands and the exit codes.", "svmkit help"},
    {"The options of an esm subcommand.", "svmkit help esm authorize"},
};

constexpr Example kBuild[] = {
    {"Package a kernel, its initrd and command line, compressed, signed with a key file.",
     "svmkit build --kernel vmlinux --initrd initrd.img --cmdline 'console=hvc0 svm=on' "
     "--compress gzip --security-version 1 --key release.key -o secure.img"},
    {"Sign with a key on a PKCS#11 token (an HSM or SoftHSM2); the PIN is read from "
     "$SVMKIT_PKCS11_PIN.",
     "svmkit build --kernel vmlinux --initrd initrd.img --cmdline-file cmdline.txt "
     "--key 'pkcs11:token=release;object=signing' "
     "--pkcs11-module /usr/lib/softhsm/libsofthsm2.so -o secure.img"},
    {"Build without signatures, to be signed elsewhere (svmkit-tbs(1), svmkit-attach(1)).",
     "svmkit build --kernel vmlinux --initrd initrd.img --cmdline-file cmdline.txt --unsigned "
     "-o unsigned.img"},
    {"An image of the sample guest kernel svmkit installs, to boot with svmkit-boot(1).",
     "svmkit build --kernel @HELPERDIR@/sample-kernel.elf "
     "--cmdline 'console=hvc0 svm=on svmkit.swiotlb=8M' --key release.key -o sample.img"},
    {"Seal the image's digests and a secret file for one machine's TPM key (PEF ibm,esm).",
     "svmkit build --kernel vmlinux --initrd initrd.img --cmdline 'console=hvc0 svm=on' "
     "--key release.key --esm-recipient machine.pub --esm-file disk-key=disk.key "
     "-o secure.img"},
};

constexpr Example kKeygen[] = {
    {"An Ed25519 key pair; the private key is created with mode 0600.",
     "svmkit keygen --algo ed25519 -o release.key --public-output release.pub"},
    {"An RSA key pair, reporting its key id as JSON.",
     "svmkit keygen --algo rsa-3072 -o rsa.key --public-output rsa.pub --json"},
};

constexpr Example kInspect[] = {
    {"Everything inside an image: components, digests, signatures, ESM nodes.",
     "svmkit inspect secure.img"},
    {"The same for a script.", "svmkit inspect --json secure.img"},
};

constexpr Example kVerify[] = {
    {"Check an image against one trusted key and a minimum security version.",
     "svmkit verify secure.img --trusted-key release.pub --min-security-version 1"},
    {"Require two of three trusted signers, and refuse a revoked key.",
     "svmkit verify secure.img --trusted-key a.pub --trusted-key b.pub --trusted-key c.pub "
     "--require-signatures 2 --revoked-key old.pub --json"},
};

constexpr Example kExtract[] = {
    {"The signed command line of an image.",
     "svmkit extract secure.img --component cmdline -o cmdline.txt"},
    {"The kernel, as it was given to svmkit build.",
     "svmkit extract secure.img --component kernel -o vmlinux.out"},
};

constexpr Example kTbs[] = {
    {"The bytes a detached signer signs.", "svmkit tbs unsigned.img -o tbs.bin"},
    {"Their SHA-256 digest in hex, for a signer that signs digests.",
     "svmkit tbs unsigned.img --hash sha256 --hex"},
};

constexpr Example kAttach[] = {
    {"Add a signature made elsewhere (here with openssl pkeyutl -sign -rawin on tbs.bin); "
     "it is checked before it is added.",
     "svmkit attach unsigned.img --signature tbs.sig --pubkey release.pub -o secure.img"},
};

constexpr Example kBoot[] = {
    {"Boot an image on the simulated PEF machine with a virtio-blk disk.",
     "svmkit boot sample.img --trusted-key release.pub --disk disk.img"},
    {"The boot report as JSON, without the guest console.",
     "svmkit boot sample.img --trusted-key release.pub --json --quiet"},
    {"Let a normal guest's boot loader load the image kexec-style.",
     "svmkit boot --kexec sample.img --trusted-key release.pub"},
    {"Boot grub-style from a disk made by svmkit-mkdisk(1), choosing an entry.",
     "svmkit boot --disk boot-disk.img --entry sample --trusted-key release.pub"},
};

constexpr Example kEsm[] = {
    {"Make a blob from an svm-tools YAML file, then show it.",
     "svmkit esm make -y svm_blob.yml -o blob.dtb"},
    {"", "svmkit esm display blob.dtb"},
};

constexpr Example kEsmMake[] = {
    {"A blob from the svm-tools YAML description (origin, recipients, digests, files).",
     "svmkit esm make -y svm_blob.yml -o blob.dtb"},
    {"The same with svm-tools' spelling of the output, for a ppc64le kernel.",
     "svmkit esm make -y svm_blob.yml -b blob.dtb --arch ppc64le"},
};

constexpr Example kEsmDisplay[] = {
    {"The lockboxes, digests and files of a blob.", "svmkit esm display blob.dtb"},
    {"The ibm,esm nodes of a secure image, as JSON.", "svmkit esm display secure.img --json"},
};

constexpr Example kEsmAuthorize[] = {
    {"Let a second machine open the image's secrets; the owner's key opens the blob.",
     "svmkit esm authorize secure.img --origin-key owner.key --recipient machine2.pub "
     "-c 'second machine' -o secure2.img"},
};

constexpr Example kEsmRevoke[] = {
    {"Remove a machine's lockbox, naming it by its public key, in place.",
     "svmkit esm revoke blob.dtb --fingerprint machine2.pub"},
};

constexpr Example kEsmExtract[] = {
    {"Decrypt the sealed digests with a machine's key.",
     "svmkit esm extract secure.img --key machine.key -o digests.dtb"},
    {"Decrypt one secret file.",
     "svmkit esm extract secure.img --key machine.key --file disk-key -o disk.key"},
};

constexpr Example kEsmDigest[] = {
    {"The digests a blob for this kernel, initrd and command line would carry.",
     "svmkit esm digest --kernel vmlinux --initrd initrd.img --cmdline 'console=hvc0 svm=on' "
     "--json"},
    {"The digests the YAML's digest entry describes.", "svmkit esm digest -y svm_blob.yml"},
};

constexpr Example kEsmAdd[] = {
    {"Prepend a blob to an initrd as the cpio svm-tools' svm add makes (the ultravisor finds "
     "it there).",
     "svmkit esm add --blob blob.dtb --initrd initrd.img -o initrd-esm.img"},
    {"The same in svm-tools' spelling.",
     "svmkit esm add -b blob.dtb -i initrd.img -f initrd-esm.img"},
};

constexpr Example kMkdisk[] = {
    {"A boot disk with one entry, booted by svmkit boot --disk.",
     "svmkit mkdisk -o boot-disk.img --entry sample=sample.img --default sample"},
    {"Two entries of one image, one with extra command-line text, on a 256 MiB disk.",
     "svmkit mkdisk -o boot-disk.img --entry normal=secure.img "
     "--entry debug=secure.img,cmdline=loglevel=8 --size 256M"},
};

constexpr Example kLoad[] = {
    {"Where a kexec-style load would put each segment of an image, as JSON.",
     "svmkit load --plan secure.img --json"},
};

constexpr std::array kTable{
    CommandExamples{"svmkit", kSvmkit},
    CommandExamples{"svmkit help", kHelp},
    CommandExamples{"svmkit build", kBuild},
    CommandExamples{"svmkit keygen", kKeygen},
    CommandExamples{"svmkit inspect", kInspect},
    CommandExamples{"svmkit verify", kVerify},
    CommandExamples{"svmkit extract", kExtract},
    CommandExamples{"svmkit tbs", kTbs},
    CommandExamples{"svmkit attach", kAttach},
    CommandExamples{"svmkit boot", kBoot},
    CommandExamples{"svmkit esm", kEsm},
    CommandExamples{"svmkit esm make", kEsmMake},
    CommandExamples{"svmkit esm display", kEsmDisplay},
    CommandExamples{"svmkit esm authorize", kEsmAuthorize},
    CommandExamples{"svmkit esm revoke", kEsmRevoke},
    CommandExamples{"svmkit esm extract", kEsmExtract},
    CommandExamples{"svmkit esm digest", kEsmDigest},
    CommandExamples{"svmkit esm add", kEsmAdd},
    CommandExamples{"svmkit mkdisk", kMkdisk},
    CommandExamples{"svmkit load", kLoad},
};

} // namespace

std::span<const Example> examples_for(std::string_view path) {
    for (const CommandExamples& c : kTable)
        if (c.path == path)
            return c.examples;
    return {};
}

std::vector<std::string_view> example_paths() {
    std::vector<std::string_view> paths;
    paths.reserve(kTable.size());
    for (const CommandExamples& c : kTable)
        paths.push_back(c.path);
    return paths;
}

namespace {

// "svmkit esm make": the subcommands the last parse selected.
std::string parsed_path(const CLI::App& root) {
    std::string path = "svmkit";
    const CLI::App* at = &root;
    while (!at->get_subcommands().empty()) {
        at = at->get_subcommands().front();
        path += " " + at->get_name();
    }
    return path;
}

Result<void> check_example(CLI::App& root, std::string_view path, const Example& e,
                           std::string_view helper_dir) {
    std::string line(e.command_line);
    if (const auto at = line.find(kHelperDirPlaceholder); at != std::string::npos)
        line.replace(at, kHelperDirPlaceholder.size(), helper_dir);
    std::string error;
    try {
        root.parse(line, true);
    } catch (const CLI::ParseError& x) {
        error = x.what();
    }
    const std::string selected = parsed_path(root);
    root.clear();
    if (!error.empty())
        return fail(ExitCode::usage, "the example of '{}' '{}' does not parse: {}", path, line,
                    error);
    // A command's examples run it; a group's (svmkit, esm) run its commands.
    if (selected != path && !selected.starts_with(std::string(path) + " "))
        return fail(ExitCode::usage, "the example of '{}' '{}' runs '{}'", path, line, selected);
    return {};
}

Result<void> check_command(CLI::App& root, const CommandChain& chain,
                           std::vector<std::string>& paths, std::string_view helper_dir) {
    const std::string path = command_path(chain);
    paths.push_back(path);
    const auto examples = examples_for(path);
    if (examples.empty())
        return fail(ExitCode::usage, "'{}' has no examples (wrapper/examples.cpp)", path);
    for (const Example& e : examples)
        SVM_CHECK(check_example(root, path, e, helper_dir));
    for (const CLI::App* sub : subcommands_of(*chain.back())) {
        CommandChain child = chain;
        child.push_back(sub);
        SVM_CHECK(check_command(root, child, paths, helper_dir));
    }
    return {};
}

} // namespace

Result<void> check_examples(CLI::App& root, std::string_view helper_dir) {
    std::vector<std::string> paths;
    SVM_CHECK(check_command(root, {&root}, paths, helper_dir));
    for (std::string_view listed : example_paths())
        if (std::find(paths.begin(), paths.end(), listed) == paths.end())
            return fail(ExitCode::usage,
                        "wrapper/examples.cpp has examples for '{}', which is no command", listed);
    return {};
}

} // namespace svmkit::cli
