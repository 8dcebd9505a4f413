// svmkit esm: make, show and change PEF ibm,esm blobs (docs/esm.md).
//
//   esm make -y svm_blob.yml -o blob.dtb     the svm-tools YAML
//   esm display BLOB|IMAGE [--json]          comments, fingerprints, sizes
//   esm authorize BLOB|IMAGE --origin-key K --recipient PUB [-c TEXT] [-o OUT]
//   esm revoke BLOB|IMAGE --fingerprint F|PUB [-o OUT]
//   esm extract BLOB|IMAGE --key PRIV [--file NAME] -o OUT
//   esm digest (-y svm_blob.yml | --kernel K [--initrd I] [--cmdline C]) [--json]
//   esm add --blob B --initrd I -o OUT        svm-tools' `svm add -b B -i I -f OUT`
//
// Passphrases of encrypted private keys come from --key-passphrase-env or
// --key-passphrase-file, never from a prompt.
#include "base/output_file.hpp"
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/arch_option.hpp"
#include "wrapper/command.hpp"

#include "format/attach.hpp"
#include "format/esm_blob.hpp"
#include "format/esm_config.hpp"
#include "format/esm_cpio.hpp"
#include "format/esm_crypto.hpp"
#include "format/esm_digest.hpp"
#include "format/image_reader.hpp"
#include "platform/esm_initrd.hpp"
#include "wrapper/json.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

namespace svmkit::cli {

namespace {

struct PassphraseOptions {
    std::optional<std::string> env;
    std::optional<std::string> file;
    [[nodiscard]] signer::PassphraseSource source() const { return {env, file}; }
};

struct EsmOptions {
    PassphraseOptions pass;
    std::string arch; // empty: the kernel ELF's machine, else the host
    // make
    std::string config;
    std::string output;
    // display, authorize, revoke, extract
    std::string blob;
    bool json = false;
    std::string origin_key;
    std::string recipient;
    std::string comment;
    std::string fingerprint;
    std::string key;
    std::optional<std::string> file;
    // digest
    std::optional<std::string> kernel;
    std::optional<std::string> initrd;
    std::string cmdline;
    // add (blob, initrd and output above)
    std::string member_name; // empty: the blob file's name
};

bool is_elf(std::span<const std::byte> bytes) {
    return bytes.size() >= 4 && bytes[0] == std::byte{0x7f} && bytes[1] == std::byte{'E'} &&
           bytes[2] == std::byte{'L'} && bytes[3] == std::byte{'F'};
}

// A standalone blob, or the ibm,esm nodes of a secure image (then `image`
// holds the image, so that a changed blob can be written back into it), or,
// for an image without nodes of its own, the blob in a cpio prepended to its
// initrd (`in_initrd` names the member; read-only: changing it changes the
// signed initrd).
struct LoadedBlob {
    format::EsmBlob blob;
    std::optional<format::SecureImage> image;
    std::string in_initrd;
};

Result<LoadedBlob> load_blob(const std::string& path) {
    SVM_TRY(file, InputFile::open(path));
    std::vector<std::byte> magic(std::min<std::uint64_t>(4, file.size()));
    SVM_CHECK(file.read_at(0, magic));
    if (is_elf(magic)) {
        SVM_TRY(img, format::open_image(path));
        if (img.manifest.esm.empty()) {
            SVM_TRY(found, platform::find_image_initrd_esm_blob(img));
            if (found)
                return LoadedBlob{std::move(found->blob), std::move(img), found->path};
        }
        LoadedBlob loaded{img.manifest.esm, std::move(img), {}};
        return loaded;
    }
    SVM_TRY(bytes, file.read_all(format::kEsmMaxBlobSize));
    SVM_TRY(blob, format::decode_esm_blob(bytes, path));
    return LoadedBlob{std::move(blob), std::nullopt, {}};
}

Result<format::EsmBlob> read_blob(const std::string& path) {
    SVM_TRY(loaded, load_blob(path));
    return std::move(loaded.blob);
}

// Writes the changed blob to `path`: a blob file, or a copy of the image
// whose manifest section carries the new nodes (its signatures stay valid:
// only lockboxes change, and they are not signed, docs/esm.md). A blob in
// the initrd is refused: it is part of the signed initrd.
Result<void> store_blob(const LoadedBlob& loaded, const std::string& path) {
    if (!loaded.in_initrd.empty())
        return fail(ExitCode::usage,
                    "{}: the ESM blob is the initrd's cpio member {}, part of the signed initrd; "
                    "change the blob file and build the initrd and the image again",
                    loaded.image->path(), loaded.in_initrd);
    if (!loaded.image)
        return write_output_file(path, format::encode_esm_blob(loaded.blob));
    format::Manifest m = loaded.image->manifest;
    m.esm = loaded.blob;
    return format::write_with_manifest(*loaded.image, m, path);
}

Result<format::EsmSymKey> open_with(const format::EsmBlob& blob, const format::EsmKey& key,
                                    const std::string& where) {
    format::EsmOpened opened = format::esm_open_lockbox(blob, key);
    if (opened.failure != format::EsmOpenFailure::none)
        return fail(ExitCode::verification_failed, "{}: {}", where, opened.message);
    return opened.symkey;
}

Result<std::string> read_text(const std::string& path, std::uint64_t limit) {
    SVM_TRY(bytes, read_small_file(path, limit));
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

Result<format::EsmDigests> digests_from_config(const format::EsmConfig::Digest& d,
                                               const std::string& arch_option) {
    SVM_TRY(arch, resolve_arch(arch_option, d.kernel));
    return format::compute_esm_digests({d.kernel, arch, d.initramfs, d.args});
}

// The one-line (or JSON) result of a command that wrote `output`.
int report_written(const EsmOptions& o, const char* command, const std::string& output,
                   const std::string& what, Json details) {
    if (o.json) {
        Json j;
        j["schema"] = std::string("svmkit-esm-") + command + "-v1";
        j["output"] = output;
        for (auto& [k, v] : details.items())
            j[k] = v;
        print_json(j, human_stream());
    } else {
        std::fprintf(human_stream(), "wrote %s: %s\n", output.c_str(), what.c_str());
    }
    return 0;
}

// ---- make ------------------------------------------------------------------

Result<int> run_make(const EsmOptions& o) {
    SVM_CHECK(require_value(o.output, "-o/--output (or svm-tools' -b/--blob)"));
    SVM_TRY(text, read_text(o.config, format::kEsmMaxConfigSize));
    SVM_TRY(config, format::parse_esm_config(text, o.config));

    SVM_TRY(origin, format::load_esm_public_key(config.origin.pubkey));
    if (config.origin.seckey) {
        // The owner proves the pair matches now, not when authorising later.
        SVM_TRY(sec, format::load_esm_private_key(*config.origin.seckey, o.pass.source()));
        if (sec.fingerprint != origin.fingerprint)
            return fail(ExitCode::usage, "{}: origin seckey {} is not the private half of {}",
                        o.config, *config.origin.seckey, config.origin.pubkey);
    }
    std::vector<format::EsmKey> recipients;
    for (const auto& r : config.recipients) {
        SVM_TRY(key, format::load_esm_public_key(r.pubkey));
        recipients.push_back(std::move(key));
    }
    format::EsmMakeRequest req;
    req.origin = format::EsmRecipient{&origin, config.origin.comment};
    for (std::size_t i = 0; i < recipients.size(); ++i)
        req.recipients.push_back({&recipients[i], config.recipients[i].comment});
    SVM_TRY(digests, digests_from_config(config.digest, o.arch));
    req.digests = std::move(digests);
    req.digests_comment = config.digest.comment;
    for (const auto& f : config.files) {
        SVM_TRY(data, read_small_file(f.path, format::kEsmMaxBlobSize));
        req.files.push_back({f.name, f.comment, std::move(data)});
    }
    auto blob = format::make_esm_blob(req);
    if (!blob)
        return unexpected(with_context(std::move(blob.error()), o.config));
    const std::vector<std::byte> bytes = format::encode_esm_blob(*blob);
    if (bytes.size() > format::kEsmMaxBlobSize)
        return fail(ExitCode::usage, "{}: the blob would be {} bytes, more than the {} byte limit",
                    o.config, bytes.size(), format::kEsmMaxBlobSize);
    SVM_CHECK(write_output_file(o.output, bytes));
    return report_written(o, "make", o.output,
                          fmt::format("{} lockboxes, {} files, {} bytes", blob->lockboxes.size(),
                                      blob->files.size(), bytes.size()),
                          {{"lockboxes", blob->lockboxes.size()},
                           {"files", blob->files.size()},
                           {"size", bytes.size()}});
}

// ---- display ---------------------------------------------------------------

Result<int> run_display(const EsmOptions& o) {
    SVM_TRY(loaded, load_blob(o.blob));
    const format::EsmBlob& blob = loaded.blob;
    if (o.json) {
        JsonWriter j;
        j.begin_object();
        j.value("schema", "svmkit-esm-v1");
        j.value("file", o.blob);
        if (!loaded.in_initrd.empty())
            j.value("initrd_member", loaded.in_initrd);
        j.begin_array("lockboxes");
        for (const auto& box : blob.lockboxes) {
            j.begin_object();
            j.value("name", box.node_name());
            j.value("role", box.number == 0 ? "origin" : "recipient");
            j.value("fingerprint", format::esm_fingerprint_hex(box.fingerprint));
            j.value("untrusted_comment", box.comment);
            j.value("encrypted_symkey_size", std::uint64_t{box.encrypted_symkey.size()});
            j.end_object();
        }
        j.end_array();
        if (blob.digests) {
            j.begin_object("digests");
            j.value("untrusted_comment", blob.digests->comment);
            j.value("ciphertext_size", std::uint64_t{blob.digests->ciphertext.size()});
            j.end_object();
        } else {
            j.null("digests");
        }
        j.begin_array("files");
        for (const auto& f : blob.files) {
            j.begin_object();
            j.value("name", f.name);
            j.value("untrusted_comment", f.sealed.comment);
            j.value("size", std::uint64_t{f.sealed.ciphertext.size()});
            j.end_object();
        }
        j.end_array();
        j.end_object();
        print_json(j.document(), stdout);
        return 0;
    }
    if (loaded.in_initrd.empty())
        std::printf("%s: ibm,esm blob\n", o.blob.c_str());
    else
        std::printf("%s: ibm,esm blob in the initrd's cpio member %s\n", o.blob.c_str(),
                    loaded.in_initrd.c_str());
    for (const auto& box : blob.lockboxes)
        std::printf("  %-9s %-16s %s  untrusted-comment \"%s\"\n",
                    box.number == 0 ? "origin" : "recipient", box.node_name().c_str(),
                    format::esm_fingerprint_hex(box.fingerprint).c_str(), box.comment.c_str());
    if (blob.digests)
        std::printf("  digests   %zu bytes encrypted  untrusted-comment \"%s\"\n",
                    blob.digests->ciphertext.size(), blob.digests->comment.c_str());
    else
        std::printf("  digests   none\n");
    for (const auto& f : blob.files)
        std::printf("  file      %-16s %zu bytes  untrusted-comment \"%s\"\n", f.name.c_str(),
                    f.sealed.ciphertext.size(), f.sealed.comment.c_str());
    return 0;
}

// ---- authorize, revoke -----------------------------------------------------

Result<int> run_authorize(const EsmOptions& o) {
    SVM_TRY(loaded, load_blob(o.blob));
    format::EsmBlob& blob = loaded.blob;
    SVM_TRY(owner, format::load_esm_private_key(o.origin_key, o.pass.source()));
    SVM_TRY(recipient, format::load_esm_public_key(o.recipient));
    SVM_TRY(symkey, open_with(blob, owner, o.blob));
    auto added = format::esm_authorize(blob, symkey, recipient, o.comment);
    if (!added)
        return unexpected(with_context(std::move(added.error()), o.blob));
    const std::string out = o.output.empty() ? o.blob : o.output;
    if (o.output.empty())
        IoRegistry::instance().allow_in_place(o.blob);
    SVM_CHECK(store_blob(loaded, out));
    const std::string fp = format::esm_fingerprint_hex(recipient.fingerprint);
    return report_written(o, "authorize", out,
                          fmt::format("authorised {} (fingerprint {})", o.recipient, fp),
                          {{"recipient", o.recipient}, {"fingerprint", fp}});
}

Result<int> run_revoke(const EsmOptions& o) {
    SVM_TRY(loaded, load_blob(o.blob));
    format::EsmBlob& blob = loaded.blob;
    auto fingerprint = format::parse_esm_fingerprint_hex(o.fingerprint);
    if (!fingerprint) {
        // Not 64 hex digits: a public key file.
        auto key = format::load_esm_public_key(o.fingerprint);
        if (!key)
            return fail(ExitCode::usage,
                        "--fingerprint: '{}' is neither 64 hex digits nor an RSA public key "
                        "file ({})",
                        o.fingerprint, key.error().message);
        fingerprint = key->fingerprint;
    }
    auto removed = format::esm_revoke(blob, *fingerprint);
    if (!removed)
        return unexpected(with_context(std::move(removed.error()), o.blob));
    const std::string out = o.output.empty() ? o.blob : o.output;
    if (o.output.empty())
        IoRegistry::instance().allow_in_place(o.blob);
    SVM_CHECK(store_blob(loaded, out));
    const std::string fp = format::esm_fingerprint_hex(*fingerprint);
    return report_written(o, "revoke", out, "revoked " + fp, {{"fingerprint", fp}});
}

// ---- extract ---------------------------------------------------------------

Result<int> run_extract_esm(const EsmOptions& o) {
    SVM_TRY(blob, read_blob(o.blob));
    SVM_TRY(key, format::load_esm_private_key(o.key, o.pass.source()));
    SVM_TRY(symkey, open_with(blob, key, o.blob));
    const format::EsmSealed* sealed = nullptr;
    std::string what;
    if (o.file) {
        const format::EsmFile* f = blob.file(*o.file);
        if (f == nullptr)
            return fail(ExitCode::usage, "{}: the blob has no file '{}'", o.blob, *o.file);
        sealed = &f->sealed;
        what = "file " + *o.file;
    } else {
        if (!blob.digests)
            return fail(ExitCode::usage, "{}: the blob has no digests", o.blob);
        sealed = &*blob.digests;
        what = "digests device tree";
    }
    auto plain = format::esm_open(symkey, *sealed);
    if (!plain)
        return unexpected(with_context(std::move(plain.error()), o.blob + ": " + what));
    if (!o.file) {
        auto digests = format::decode_esm_digests(*plain, o.blob);
        if (!digests)
            return unexpected(std::move(digests.error()));
    }
    SVM_CHECK(write_output_file(o.output, *plain, {.mode = 0600}));
    return report_written(o, "extract", o.output, fmt::format("{}, {} bytes", what, plain->size()),
                          {{"what", what}, {"size", plain->size()}});
}

// ---- digest ----------------------------------------------------------------

Result<int> run_digest(const EsmOptions& o) {
    format::EsmDigestInputs in;
    if (!o.config.empty()) {
        SVM_TRY(text, read_text(o.config, format::kEsmMaxConfigSize));
        SVM_TRY(config, format::parse_esm_config(text, o.config));
        SVM_TRY(arch, resolve_arch(o.arch, config.digest.kernel));
        in = {config.digest.kernel, arch, config.digest.initramfs, config.digest.args};
    } else {
        if (!o.kernel)
            return fail(ExitCode::usage, "esm digest: give -y CONFIG or --kernel");
        SVM_TRY(arch, resolve_arch(o.arch, *o.kernel));
        in = {*o.kernel, arch, o.initrd, o.cmdline};
    }
    SVM_TRY(d, format::compute_esm_digests(in));
    if (o.json) {
        JsonWriter j;
        j.begin_object();
        j.value("schema", "svmkit-esm-digest-v1");
        j.value("algorithm", "SHA512");
        j.value("kernel", format::hex(d.kernel));
        j.value("kernel_size", std::uint64_t{d.kernel_size});
        if (d.initrd)
            j.value("initrd", format::hex(*d.initrd));
        else
            j.null("initrd");
        j.value("bootargs", format::hex(d.bootargs));
        j.end_object();
        print_json(j.document(), stdout);
        return 0;
    }
    std::printf("algorithm   SHA512\nkernel      %s\nkernel-size %u\ninitrd      %s\n"
                "bootargs    %s\n",
                format::hex(d.kernel).c_str(), d.kernel_size,
                d.initrd ? format::hex(*d.initrd).c_str() : "(none)",
                format::hex(d.bootargs).c_str());
    return 0;
}

// ---- add -------------------------------------------------------------------

// The archive entries' mtime: SOURCE_DATE_EPOCH when set, else now (as
// `build` stamps its creation time). newc has 32 bits for it.
Result<std::uint32_t> archive_mtime() {
    const char* epoch = std::getenv("SOURCE_DATE_EPOCH");
    if (epoch == nullptr || *epoch == '\0')
        return static_cast<std::uint32_t>(std::time(nullptr));
    auto v = parse_u64(epoch, "SOURCE_DATE_EPOCH");
    if (!v || *v > 0xffffffffu)
        return fail(ExitCode::usage,
                    "SOURCE_DATE_EPOCH='{}' is not a number of seconds a cpio archive can hold "
                    "(0 to 4294967295)",
                    epoch);
    return static_cast<std::uint32_t>(*v);
}

// The member's file name: --name, else the blob file's own (svm-tools
// copies the blob into opt/ibm/pef/ under its name), "esmb.dtb" for stdin.
std::string member_file_name(const EsmOptions& o) {
    if (!o.member_name.empty())
        return o.member_name;
    if (o.blob == "-")
        return "esmb.dtb";
    return std::filesystem::path(o.blob).filename().string();
}

// Copies the whole initrd after `offset` bytes of `out`.
Result<void> copy_initrd(const InputFile& initrd, OutputFile& out, std::uint64_t offset) {
    constexpr std::uint64_t kChunk = 1u << 20;
    std::vector<std::byte> chunk(kChunk);
    for (std::uint64_t done = 0; done < initrd.size();) {
        const auto n =
            static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, initrd.size() - done));
        SVM_CHECK(initrd.read_at(done, std::span(chunk).first(n)));
        SVM_CHECK(out.write_at(offset + done, std::span(chunk).first(n)));
        done += n;
    }
    return {};
}

Result<int> run_add(const EsmOptions& o) {
    SVM_CHECK(require_value(o.output, "-o/--output (or svm-tools' -f)"));
    SVM_TRY(mtime, archive_mtime());
    SVM_TRY(blob_bytes, read_small_file(o.blob, format::kEsmMaxBlobSize));
    SVM_TRY(blob, format::decode_esm_blob(blob_bytes, o.blob));
    SVM_TRY(initrd, InputFile::open(*o.initrd));
    // A second archive in front would make the ultravisor seal the first
    // one into the initrd digest: the blob could never match.
    std::vector<std::byte> head(std::min<std::uint64_t>(initrd.size(), 16u << 20));
    SVM_CHECK(initrd.read_at(0, head));
    auto found = platform::find_initrd_esm_blob(head, initrd.path(), initrd.size());
    if (!found)
        return fail(ExitCode::malformed,
                    "{}: already starts with an archive whose first file is under {} ({}); give "
                    "the initrd without it",
                    initrd.path(), format::kEsmCpioDirectory, found.error().message);
    if (*found)
        return fail(ExitCode::malformed,
                    "{}: already starts with an ESM blob archive (cpio member {}); give the "
                    "initrd without it",
                    initrd.path(), (*found)->path);
    SVM_TRY(archive, format::make_esm_cpio(blob_bytes, member_file_name(o), mtime));
    SVM_TRY(out, OutputFile::create(o.output));
    SVM_CHECK(out.write_at(0, archive));
    SVM_CHECK(copy_initrd(initrd, out, archive.size()));
    SVM_CHECK(out.commit());
    const std::string member = std::string(format::kEsmCpioDirectory) + "/" + member_file_name(o);
    return report_written(
        o, "add", o.output,
        fmt::format("cpio member {} ({} lockboxes, {} files), {} byte archive, then the {} "
                    "byte initrd",
                    member, blob.lockboxes.size(), blob.files.size(), archive.size(),
                    initrd.size()),
        {{"member", member},
         {"blob_size", blob_bytes.size()},
         {"archive_size", archive.size()},
         {"initrd_size", initrd.size()},
         {"size", archive.size() + initrd.size()}});
}

void add_passphrase_options(CLI::App* cmd, PassphraseOptions& p) {
    cmd->add_option("--key-passphrase-env", p.env,
                    "Environment variable holding the passphrase of an encrypted private key");
    cmd->add_option("--key-passphrase-file", p.file,
                    "File whose first line is the passphrase of an encrypted private key");
}

} // namespace

Result<format::EsmBlob> build_esm_nodes(const BuildOptions& o,
                                        const format::PayloadSource& kernel_image,
                                        const std::optional<format::PayloadSource>& initrd,
                                        const std::string& cmdline) {
    if (o.esm_blob)
        return read_blob(*o.esm_blob);
    if (o.esm_recipients.empty())
        return format::EsmBlob{};
    std::optional<format::EsmKey> origin;
    if (o.esm_origin) {
        SVM_TRY(key, format::load_esm_public_key(*o.esm_origin));
        origin = std::move(key);
    }
    std::vector<format::EsmKey> recipients;
    for (const std::string& path : o.esm_recipients) {
        SVM_TRY(key, format::load_esm_public_key(path));
        recipients.push_back(std::move(key));
    }
    format::EsmMakeRequest req;
    if (origin)
        req.origin = format::EsmRecipient{&*origin, "origin"};
    for (const auto& key : recipients)
        req.recipients.push_back({&key, key.path});
    SVM_TRY(digests, format::compute_esm_digests(kernel_image, initrd, cmdline));
    req.digests = std::move(digests);
    for (const std::string& spec : o.esm_files) {
        const auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
            return fail(ExitCode::usage, "--esm-file: '{}' is not NAME=PATH", spec);
        const std::string path = spec.substr(eq + 1);
        SVM_TRY(data, read_small_file(path, format::kEsmMaxBlobSize));
        req.files.push_back({spec.substr(0, eq), "", std::move(data)});
    }
    auto blob = format::make_esm_blob(req);
    if (!blob)
        return unexpected(with_context(std::move(blob.error()), "--esm-*"));
    return std::move(*blob);
}

Command add_esm_command(CLI::App& app) {
    auto o = std::make_shared<EsmOptions>();
    auto* esm = app.add_subcommand(
        "esm", "Make, show and change PEF ibm,esm blobs (lockboxes, digests, secret files)");
    esm->require_subcommand(1);

    auto* make = esm->add_subcommand("make", "Make a blob from an svm-tools YAML description");
    make->add_option("-y,--config", o->config, "svm-tools YAML (origin, recipient, digest, file)")
        ->required();
    make->add_option("-o,--output,-b,--blob", o->output,
                     "Output blob ('-': stdout; -b/--blob: svm-tools' spelling)");
    make->add_option("--arch", o->arch,
                     "host, x86_64 or ppc64le (default: the YAML kernel ELF's machine)");
    add_json_flag(make, o->json, "What was written");
    add_passphrase_options(make, o->pass);

    auto* display = esm->add_subcommand("display", "Show a blob's lockboxes, digests and files");
    display->add_option("blob", o->blob, "ibm,esm blob or secure image")->required();
    add_json_flag(display, o->json, "The blob");

    auto* authorize = esm->add_subcommand("authorize", "Add a lockbox for a recipient key");
    authorize->add_option("blob", o->blob, "ibm,esm blob or secure image")->required();
    authorize->add_option("--origin-key", o->origin_key, "A private key with a lockbox")
        ->required();
    authorize->add_option("--recipient", o->recipient, "The recipient's RSA public key")
        ->required();
    authorize->add_option("-c,--comment", o->comment, "Untrusted comment of the new lockbox");
    authorize->add_option("-o,--output", o->output, "Output (default: change BLOB in place)");
    add_json_flag(authorize, o->json, "What was written");
    add_passphrase_options(authorize, o->pass);

    auto* revoke = esm->add_subcommand("revoke", "Remove a recipient's lockbox");
    revoke->add_option("blob", o->blob, "ibm,esm blob or secure image")->required();
    revoke
        ->add_option("--fingerprint", o->fingerprint,
                     "The lockbox's fingerprint (64 hex digits) or the recipient's public key")
        ->required();
    revoke->add_option("-o,--output", o->output, "Output (default: change BLOB in place)");
    add_json_flag(revoke, o->json, "What was written");

    auto* extract =
        esm->add_subcommand("extract", "Decrypt the digests device tree or a secret file");
    extract->add_option("blob", o->blob, "ibm,esm blob or secure image")->required();
    extract->add_option("--key", o->key, "A private key with a lockbox")->required();
    extract->add_option("--file", o->file, "The secret file to decrypt (default: the digests)");
    extract->add_option("-o,--output", o->output, "Output file (mode 0600; '-': stdout)")
        ->required();
    add_json_flag(extract, o->json, "What was written");
    add_passphrase_options(extract, o->pass);

    auto* digest = esm->add_subcommand("digest", "Print the digests a blob would carry");
    auto* cfg = digest->add_option("-y,--config", o->config, "svm-tools YAML (its digest entry)");
    auto* kern = digest->add_option("--kernel", o->kernel, "Kernel: ELF vmlinux or raw image");
    cfg->excludes(kern);
    digest->add_option("--initrd", o->initrd, "Initial ramdisk")->excludes(cfg);
    digest->add_option("--cmdline", o->cmdline, "Kernel command line")->excludes(cfg);
    digest->add_option("--arch", o->arch,
                       "host, x86_64 or ppc64le (default: the kernel ELF's machine)");
    add_json_flag(digest, o->json, "The digests");

    auto* add = esm->add_subcommand(
        "add", "Prepend a blob to an initrd as the cpio archive the ultravisor finds "
               "(svm-tools' `svm add`)");
    add->add_option("--blob,-b", o->blob, "ibm,esm blob made by `esm make` ('-': stdin)")
        ->required();
    add->add_option("--initrd,-i", o->initrd, "The initrd the blob's digests describe ('-': stdin)")
        ->required();
    add->add_option("-o,--output,-f", o->output,
                    "The initrd with the archive in front ('-': stdout; -f: svm-tools' spelling)");
    add->add_option("--name", o->member_name,
                    "The blob's file name in opt/ibm/pef/ (default: the --blob file's name)");
    add_json_flag(add, o->json, "What was written");

    auto run = [o, make, display, authorize, revoke, extract, digest, add]() -> Result<int> {
        if (make->parsed())
            return run_make(*o);
        if (display->parsed())
            return run_display(*o);
        if (authorize->parsed())
            return run_authorize(*o);
        if (revoke->parsed())
            return run_revoke(*o);
        if (extract->parsed())
            return run_extract_esm(*o);
        if (digest->parsed())
            return run_digest(*o);
        if (add->parsed())
            return run_add(*o);
        return fail(ExitCode::usage, "esm: no subcommand");
    };
    return {esm, run, [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
