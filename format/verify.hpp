// Verification of a secure image against a policy. The same policy code is
// what the simulated ultravisor enforces, so it lives here, not in the CLI.
#pragma once

#include "base/error.hpp"
#include "format/image_reader.hpp"
#include "format/manifest.hpp"
#include "format/payload.hpp"
#include "signer/signer.hpp"

#include <optional>
#include <string>
#include <vector>

namespace svmkit::format {

struct VerifyPolicy {
    std::vector<signer::PublicKey> trusted_keys;
    std::vector<signer::KeyId> revoked_keys;
    std::size_t required_signatures = 1; // distinct trusted, valid, unrevoked signers
    std::uint64_t min_security_version = 0;
};

enum class SignerStatus { trusted, revoked, unknown };
std::string_view signer_status_name(SignerStatus s);

struct SignatureCheck {
    signer::SignatureAlgorithm algorithm{};
    signer::KeyId key_id{};
    SignerStatus status = SignerStatus::unknown;
    bool valid = false; // checked only for trusted and revoked keys
    std::string detail; // why it is not valid, when it is not
};

// Why a policy check failed; each cause distinct (the ultravisor reports them).
enum class PolicyFailure {
    none,
    no_signature,         // the manifest carries no signature at all
    no_trusted_signature, // no signature by a trusted key
    bad_signature,        // a trusted key's signature does not verify
    revoked_key,          // a revoked key signed
    too_few_signatures,   // fewer distinct trusted signers than required
    rollback,             // security version below the minimum
};
std::string_view policy_failure_name(PolicyFailure f);

struct PolicyVerdict {
    std::vector<SignatureCheck> signatures;
    std::size_t good_signers = 0;
    PolicyFailure failure = PolicyFailure::none;
    std::string message; // empty when the policy holds
    [[nodiscard]] bool ok() const { return failure == PolicyFailure::none; }
};

// Checks the manifest's signatures over its to-be-signed bytes against the
// policy. Pure: no file access.
PolicyVerdict evaluate_policy(const Manifest& manifest, const VerifyPolicy& policy);

struct ComponentCheck {
    ComponentKind kind{};
    std::vector<std::byte> stored_digest; // recomputed
    bool stored_ok = false;
    std::optional<std::vector<std::byte>> unpacked_digest; // recomputed, when compressed
    std::optional<bool> unpacked_ok;
    std::string detail;
};

struct VerifyReport {
    std::vector<ComponentCheck> components;
    PolicyVerdict policy;
    std::vector<std::string> failures; // one line per failed check
    [[nodiscard]] bool ok() const { return failures.empty(); }
};

// Recomputes every component digest from the image (streaming, in parallel)
// and evaluates the policy. Errors are I/O problems only; verification
// failures are in the report.
Result<VerifyReport> verify_image(const SecureImage& image, const VerifyPolicy& policy);

// Streams a component's bytes as stored in the image.
PayloadSource component_source(const SecureImage& image, ComponentKind kind);

} // namespace svmkit::format
