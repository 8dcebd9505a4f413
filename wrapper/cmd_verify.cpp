// svmkit verify: digests and signatures against a policy.
#include "wrapper/commands.hpp"

#include "base/file_identity.hpp"
#include "wrapper/command.hpp"
#include "wrapper/json.hpp"

#include "format/verify.hpp"
#include "wrapper/json.hpp"

#include <cstdio>

namespace svmkit::cli {

namespace {

Result<format::VerifyPolicy> load_policy(const VerifyOptions& o) {
    return load_verify_policy(o.trusted_keys, o.revoked_keys, o.require_signatures,
                              o.min_security_version);
}

void verify_report_json(const format::SecureImage& img, const format::VerifyReport& r) {
    const format::Manifest& m = img.manifest;
    JsonWriter j;
    j.begin_object();
    j.value("schema", "svmkit-verify-v1");
    j.value("file", img.path());
    j.value("verified", r.ok());
    j.value("security_version", m.security_version);
    j.begin_array("components");
    for (const auto& c : r.components) {
        const format::Component* mc = m.find(c.kind);
        j.begin_object();
        j.value("name", format::component_name(c.kind));
        j.value("digest_ok", c.stored_ok);
        j.value("expected", format::hex(mc->digest));
        j.value("actual", format::hex(c.stored_digest));
        if (c.unpacked_ok)
            j.value("unpacked_digest_ok", *c.unpacked_ok);
        j.end_object();
    }
    j.end_array();
    j.begin_array("signatures");
    for (const auto& s : r.policy.signatures) {
        j.begin_object();
        j.value("key_id", signer::key_id_hex(s.key_id));
        j.value("algorithm", signer::algorithm_name(s.algorithm));
        j.value("key", format::signer_status_name(s.status));
        j.value("valid", s.valid);
        j.end_object();
    }
    j.end_array();
    j.begin_object("policy");
    j.value("ok", r.policy.ok());
    j.value("trusted_signers", std::uint64_t{r.policy.good_signers});
    j.value("failure", format::policy_failure_name(r.policy.failure));
    j.value("message", r.policy.message);
    j.end_object();
    j.begin_array("failures");
    for (const auto& f : r.failures)
        j.element(f);
    j.end_array();
    j.end_object();
    print_json(j.document(), stdout);
}

void verify_report_text(const format::SecureImage& img, const format::VerifyReport& r) {
    std::string out;
    for (const auto& c : r.components) {
        out += fmt::format("  {:<12} digest {}", format::component_name(c.kind),
                           c.stored_ok ? "ok" : "MISMATCH");
        if (c.unpacked_ok)
            out += fmt::format(", unpacked digest {}", *c.unpacked_ok ? "ok" : "MISMATCH");
        out += "\n";
    }
    for (const auto& s : r.policy.signatures)
        out += fmt::format("  signature    {} {} key {}: {}\n", signer::algorithm_name(s.algorithm),
                           format::signer_status_name(s.status), signer::key_id_hex(s.key_id),
                           s.status == format::SignerStatus::unknown ? "not checked"
                           : s.valid                                 ? "valid"
                                                                     : "INVALID");
    if (r.ok())
        out += fmt::format("{}: verified ({} trusted signer{}, security version {})\n", img.path(),
                           r.policy.good_signers, r.policy.good_signers == 1 ? "" : "s",
                           img.manifest.security_version);
    else {
        out += fmt::format("{}: VERIFICATION FAILED\n", img.path());
        for (const auto& f : r.failures)
            out += fmt::format("  - {}\n", f);
    }
    std::fputs(out.c_str(), stdout);
}

} // namespace

Result<int> run_verify(const VerifyOptions& o) {
    SVM_TRY(policy, load_policy(o));
    SVM_TRY(img, format::open_image(o.image));
    SVM_TRY(report, format::verify_image(img, policy));
    if (o.json)
        verify_report_json(img, report);
    else
        verify_report_text(img, report);
    if (report.ok())
        return 0;
    // The report above is for reading or parsing; the failure itself goes to
    // stderr like every other error.
    std::string why;
    for (const auto& f : report.failures)
        why += (why.empty() ? "" : "; ") + f;
    return fail(ExitCode::verification_failed, "{}: verification failed: {}", img.path(), why);
}

Command add_verify_command(CLI::App& app) {
    auto o = std::make_shared<VerifyOptions>();
    auto* v =
        app.add_subcommand("verify", "Check an image's digests and signatures against a policy");
    v->add_option("image", o->image, "Secure image ('-': stdin)")->required();
    v->add_option("--trusted-key", o->trusted_keys,
                  "Trusted public key or certificate (repeatable)")
        ->required();
    v->add_option("--revoked-key", o->revoked_keys, "Revoked key: key id (hex) or public key file");
    v->add_option("--require-signatures", o->require_signatures,
                  "Distinct trusted signers required")
        ->capture_default_str();
    v->add_option("--min-security-version", o->min_security_version,
                  "Refuse images with a lower security version")
        ->capture_default_str();
    add_json_flag(v, o->json, "The verification report (svmkit-verify-v1)");
    return {v, [o] { return run_verify(*o); },
            [o] {
                return o->json;
            }};
}

} // namespace svmkit::cli
