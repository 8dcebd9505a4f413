#include "format/esm_config.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <set>
#include <sstream>

namespace svmkit::format {

namespace {

using Fields = std::map<std::string, std::string>;

// The scalar fields of one entry's mapping; `required` must be there, the
// rest of `allowed` may be.
Result<Fields> fields_of(const YAML::Node& node, const std::string& label,
                         std::initializer_list<const char*> required,
                         std::initializer_list<const char*> optional, const std::string& where) {
    if (!node.IsMap())
        return fail(ExitCode::malformed, "{}: {}: expected a mapping of fields", where, label);
    Fields out;
    for (const auto& kv : node) {
        if (!kv.first.IsScalar() || !kv.second.IsScalar())
            return fail(ExitCode::malformed, "{}: {}: fields must be plain 'key: value' pairs",
                        where, label);
        const std::string key = kv.first.Scalar();
        bool known = false;
        for (const char* k : required)
            known = known || key == k;
        for (const char* k : optional)
            known = known || key == k;
        if (!known)
            return fail(ExitCode::malformed, "{}: {}: unknown field '{}'", where, label, key);
        if (!out.emplace(key, kv.second.Scalar()).second)
            return fail(ExitCode::malformed, "{}: {}: field '{}' given twice", where, label, key);
    }
    for (const char* k : required)
        if (!out.contains(k) || out[k].empty())
            return fail(ExitCode::malformed, "{}: {}: field '{}' is missing", where, label, k);
    return out;
}

std::optional<std::string> optional_field(const Fields& f, const char* key) {
    auto it = f.find(key);
    if (it == f.end())
        return std::nullopt;
    return it->second;
}

// Ignores every event: only the number of documents matters.
class DocumentCounter final : public YAML::EventHandler {
  public:
    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

// The number of documents in `text`, counting at most 2. yaml-cpp 0.7's
// LoadAll loops forever on some malformed streams (a leading ",": its
// HandleNextDocument keeps reporting an empty document; fixed upstream after
// 0.7, jbeder/yaml-cpp#1319), so documents are counted with a bounded loop.
std::size_t count_documents(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentCounter counter;
    std::size_t n = 0;
    while (n < 2 && parser.HandleNextDocument(counter))
        ++n;
    return n;
}

Result<EsmConfig> parse_document(const YAML::Node& doc, const std::string& where) {
    if (!doc.IsSequence())
        return fail(ExitCode::malformed,
                    "{}: expected a list of origin, recipient, digest and file entries", where);
    EsmConfig config;
    bool have_origin = false;
    bool have_digest = false;
    std::size_t index = 0;
    for (const auto& item : doc) {
        ++index;
        if (!item.IsMap() || item.size() != 1)
            return fail(ExitCode::malformed,
                        "{}: entry {}: expected one of 'origin:', 'recipient:', 'digest:', 'file:'",
                        where, index);
        const auto kv = *item.begin();
        if (!kv.first.IsScalar())
            return fail(ExitCode::malformed, "{}: entry {}: the entry name must be a word", where,
                        index);
        const std::string kind = kv.first.Scalar();
        const std::string label = "entry " + std::to_string(index) + " (" + kind + ")";
        if (kind == "origin") {
            if (have_origin)
                return fail(ExitCode::malformed, "{}: {}: only one origin entry is allowed", where,
                            label);
            SVM_TRY(f, fields_of(kv.second, label, {"pubkey"}, {"seckey", "comment"}, where));
            config.origin = {f["pubkey"], optional_field(f, "seckey"), f["comment"]};
            have_origin = true;
        } else if (kind == "recipient") {
            SVM_TRY(f, fields_of(kv.second, label, {"pubkey"}, {"comment"}, where));
            config.recipients.push_back({f["pubkey"], f["comment"]});
        } else if (kind == "digest") {
            if (have_digest)
                return fail(ExitCode::malformed, "{}: {}: only one digest entry is allowed", where,
                            label);
            SVM_TRY(f, fields_of(kv.second, label, {"kernel"}, {"args", "initramfs", "comment"},
                                 where));
            config.digest = {f["args"], optional_field(f, "initramfs"), f["kernel"], f["comment"]};
            have_digest = true;
        } else if (kind == "file") {
            SVM_TRY(f, fields_of(kv.second, label, {"name", "path"}, {"comment"}, where));
            config.files.push_back({f["name"], f["path"], f["comment"]});
        } else {
            return fail(ExitCode::malformed,
                        "{}: entry {}: unknown entry '{}' (origin, recipient, digest or file)",
                        where, index, kind);
        }
    }
    if (!have_origin)
        return fail(ExitCode::malformed, "{}: no origin entry", where);
    if (!have_digest)
        return fail(ExitCode::malformed, "{}: no digest entry", where);
    return config;
}

} // namespace

Result<EsmConfig> parse_esm_config(std::string_view text, const std::string& where) {
    if (text.size() > kEsmMaxConfigSize)
        return fail(ExitCode::malformed, "{}: {} bytes is larger than the {} byte limit", where,
                    text.size(), kEsmMaxConfigSize);
    try {
        const std::string copy(text);
        const std::size_t documents = count_documents(copy);
        if (documents == 0)
            return fail(ExitCode::malformed, "{}: expected one YAML document, found none", where);
        if (documents != 1)
            return fail(ExitCode::malformed,
                        "{}: not one well-formed YAML document (several, or a broken stream)",
                        where);
        return parse_document(YAML::Load(copy), where);
    } catch (const YAML::Exception& e) {
        return fail(ExitCode::malformed, "{}: not valid YAML: {}", where, e.what());
    }
}

} // namespace svmkit::format
