// PKCS#11 URIs (RFC 7512) and the PIN that goes with them.
//
// p11-kit (p11_kit_uri_parse) decodes and interprets every attribute; svmkit
// decides which attributes and combinations it takes, so that each refusal
// names the attribute and says what to do instead. The URI is split into
// attributes the way libp11's engine splits it (at ';', '?' and '&' alike),
// since the engine is what finally reads it; each attribute goes to p11-kit
// on its own, in the part of a URI where p11-kit reads it (RFC 7512's path or
// query), so that an error names the attribute it is in.
#include "signer/pkcs11_internal.hpp"

#include "signer/openssl_util.hpp"

#include "base/file.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <strings.h>

#include <openssl/crypto.h>
#include <p11-kit/uri.h>

namespace svmkit::signer::detail {

namespace {

constexpr std::string_view scheme = "pkcs11:";

// One attribute of a URI and the separator before it ('\0' for the first).
struct Segment {
    char separator;
    std::string_view text;
};

std::vector<Segment> split_attributes(std::string_view uri) {
    std::vector<Segment> segments;
    std::string_view rest = uri.substr(scheme.size());
    char separator = '\0';
    while (true) {
        std::size_t end = rest.find_first_of(";?&");
        segments.push_back({separator, rest.substr(0, end)});
        if (end == std::string_view::npos)
            break;
        separator = rest[end];
        rest.remove_prefix(end + 1);
    }
    return segments;
}

bool is_pin_value(const Segment& s) {
    return s.text.starts_with("pin-value=");
}

// The URI as given with any pin-value redacted: what every message shows.
std::string display_form(std::string_view uri, const std::vector<Segment>& segments) {
    std::string display(uri.substr(0, scheme.size()));
    for (const Segment& s : segments) {
        if (s.separator != '\0')
            display.push_back(s.separator);
        display += is_pin_value(s) ? std::string_view("pin-value=(redacted)") : s.text;
    }
    return display;
}

struct P11KitUriDeleter {
    void operator()(P11KitUri* uri) const { p11_kit_uri_free(uri); }
};
using P11KitUriPtr = std::unique_ptr<P11KitUri, P11KitUriDeleter>;

// p11-kit drops whitespace from a URI; svmkit, like libp11, takes it as part
// of the value, so it reaches p11-kit percent-encoded.
std::string encode_whitespace(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
            out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
        else
            out.push_back(c);
    }
    return out;
}

// The attributes p11-kit reads (and percent-decodes) in a URI's path; the
// others (pin-source, pin-value, module-name, module-path and any other name)
// are read in its query, where p11-kit decodes every value. type is one of
// those: p11-kit compares a path's type value as written, and svmkit, like
// libp11, decodes it first.
bool is_path_attribute(std::string_view name) {
    static constexpr std::string_view path_names[] = {"token", "manufacturer", "serial",
                                                      "model", "object",       "id"};
    return std::find(std::begin(path_names), std::end(path_names), name) != std::end(path_names);
}

// The one attribute `text` ("name=value") as p11-kit reads it; null when its
// value is not valid percent-encoding.
P11KitUriPtr p11kit_attribute(std::string_view name, std::string_view text) {
    std::string one(scheme);
    if (!is_path_attribute(name))
        one.push_back('?');
    one += encode_whitespace(text);
    P11KitUriPtr uri(p11_kit_uri_new());
    if (!uri)
        throw std::bad_alloc();
    if (p11_kit_uri_parse(one.c_str(), P11_KIT_URI_FOR_ANY, uri.get()) != P11_KIT_URI_OK)
        return nullptr;
    return uri;
}

// A blank-padded PKCS#11 field, trimmed as libp11 trims the tokens' fields.
std::string trimmed(const unsigned char* field, std::size_t size) {
    while (size > 0 && field[size - 1] == ' ')
        --size;
    return std::string(reinterpret_cast<const char*>(field), size);
}

std::optional<std::string> attribute_bytes(P11KitUri* uri, CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE* attr = p11_kit_uri_get_attribute(uri, type);
    if (attr == nullptr)
        return std::nullopt;
    return std::string(static_cast<const char*>(attr->pValue), attr->ulValueLen);
}

// The token field `name` names, in `info` and in p11-kit's CK_TOKEN_INFO.
struct TokenField {
    std::optional<std::string>& value;
    const unsigned char* field;
    std::size_t size;
};

std::optional<TokenField> token_field(std::string_view name, UriInfo& info,
                                      const CK_TOKEN_INFO& token) {
    if (name == "token")
        return TokenField{info.token, token.label, sizeof token.label};
    if (name == "manufacturer")
        return TokenField{info.manufacturer, token.manufacturerID, sizeof token.manufacturerID};
    if (name == "serial")
        return TokenField{info.serial, token.serialNumber, sizeof token.serialNumber};
    if (name == "model")
        return TokenField{info.model, token.model, sizeof token.model};
    return std::nullopt;
}

// type=private (or object-type=private), decoded: anything else names what
// cannot sign.
Result<void> check_object_type(P11KitUri* uri, const std::string& name,
                               const std::string& display) {
    const char* decoded = p11_kit_uri_get_vendor_query(uri, name.c_str());
    std::string_view value = decoded != nullptr ? decoded : "";
    if (value == "private")
        return {};
    if (value == "public" || value == "cert")
        return fail(ExitCode::usage, "{}: names a {}; signing needs type=private (or no type)",
                    display, value == "cert" ? "certificate" : "public key");
    return fail(ExitCode::usage, "{}: unknown object type '{}'", display, value);
}

// Takes one decoded attribute into `info`. True when the engine reads it too
// (everything but pin-source, which svmkit reads itself).
Result<bool> take_attribute(const std::string& name, std::string_view value, P11KitUri* uri,
                            UriInfo& info) {
    if (auto field = token_field(name, info, *p11_kit_uri_get_token_info(uri))) {
        if (p11_kit_uri_any_unrecognized(uri) != 0) // p11-kit's sign of a value too long
            return fail(ExitCode::malformed,
                        "{}: {} '{}' is longer than the {} bytes of a PKCS#11 token's field; no "
                        "token has it",
                        info.display, name, value, field->size);
        field->value = trimmed(field->field, field->size);
        return true;
    }
    if (name == "object")
        info.object = attribute_bytes(uri, CKA_LABEL).value_or("");
    else if (name == "id")
        info.id = attribute_bytes(uri, CKA_ID).value_or("");
    else if (name == "type" || name == "object-type")
        SVM_CHECK(check_object_type(uri, name, info.display));
    else if (name == "pin-source") {
        const char* source = p11_kit_uri_get_pin_source(uri);
        info.pin_source = source != nullptr ? source : "";
        return false;
    } else if (name == "module-path" || name == "module-name")
        return fail(ExitCode::usage,
                    "{}: {} in the URI is not supported; pass --pkcs11-module or set "
                    "SVMKIT_PKCS11_MODULE",
                    info.display, name);
    else
        return fail(ExitCode::usage,
                    "{}: unsupported attribute {}; the pkcs11 engine understands token, "
                    "manufacturer, serial, model, object, id, type and pin-source",
                    info.display, name);
    return true;
}

// Checks and takes every attribute, in order, into `info`; returns those the
// engine reads.
Result<std::vector<std::string_view>> take_attributes(const std::vector<Segment>& segments,
                                                      UriInfo& info) {
    std::vector<std::string_view> engine_attrs;
    std::vector<std::string> seen;
    for (const Segment& s : segments) {
        if (s.text.empty())
            continue;
        std::size_t eq = s.text.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return fail(ExitCode::usage, "{}: '{}' is not an attribute=value pair", info.display,
                        s.text);
        std::string name(s.text.substr(0, eq));
        P11KitUriPtr uri = p11kit_attribute(name, s.text);
        if (!uri)
            return fail(ExitCode::usage, "{}: bad percent-encoding in attribute {}", info.display,
                        name);
        std::string canonical = name == "object-type" ? "type" : name;
        if (std::find(seen.begin(), seen.end(), canonical) != seen.end())
            return fail(ExitCode::usage, "{}: attribute {} given twice", info.display, name);
        seen.push_back(canonical);
        SVM_TRY(for_engine, take_attribute(name, s.text.substr(eq + 1), uri.get(), info));
        if (for_engine)
            engine_attrs.push_back(s.text);
    }
    return engine_attrs;
}

std::string hex_bytes(std::string_view bytes) {
    std::string out;
    for (char c : bytes)
        out += fmt::format("{:02x}", static_cast<unsigned char>(c));
    return out;
}

std::string first_line(std::string_view text) {
    std::string_view line = text.substr(0, text.find('\n'));
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    return std::string(line);
}

// The file a pin-source names: file:PATH, file:///PATH, file://localhost/PATH
// or a bare PATH.
Result<std::string> pin_source_path(const UriInfo& info) {
    std::string_view source = *info.pin_source;
    if (source.starts_with("|"))
        return fail(ExitCode::usage,
                    "{}: pin-source commands are not supported; use pin-source=file:PATH",
                    info.display);
    if (source.size() >= 5 && strncasecmp(source.data(), "file:", 5) == 0) {
        source.remove_prefix(5);
        // file:///path and file://localhost/path name /path.
        if (source.starts_with("///"))
            source.remove_prefix(2);
        else if (source.starts_with("//localhost/"))
            source.remove_prefix(11);
    }
    if (source.empty())
        return fail(ExitCode::usage, "{}: pin-source names no file", info.display);
    return std::string(source);
}

Result<void> read_pin_source(const UriInfo& info, Pin& pin) {
    SVM_TRY(path, pin_source_path(info));
    auto content = read_small_file(path, 64ull * 1024);
    if (!content) {
        Error e = content.error();
        e.code = ExitCode::io;
        return svmkit::unexpected(with_context(std::move(e), info.display + ": pin-source"));
    }
    std::string_view text(reinterpret_cast<const char*>(content->data()), content->size());
    std::string line = first_line(text);
    OPENSSL_cleanse(content->data(), content->size());
    bool empty = line.empty();
    pin.set(line);
    OPENSSL_cleanse(line.data(), line.size());
    if (empty)
        return fail(ExitCode::usage, "{}: pin-source file {} has an empty first line", info.display,
                    path);
    return {};
}

} // namespace

Result<UriInfo> parse_uri(const std::string& uri) {
    const std::vector<Segment> segments = split_attributes(uri);
    UriInfo info;
    // The display form first, so that every message below can use it.
    info.display = display_form(uri, segments);
    if (std::any_of(segments.begin(), segments.end(), is_pin_value))
        return fail(ExitCode::usage,
                    "{}: PINs in the URI end up in shell history and process lists; use "
                    "pin-source or SVMKIT_PKCS11_PIN",
                    info.display);
    SVM_TRY(engine_attrs, take_attributes(segments, info));
    info.engine_uri = std::string(scheme);
    for (std::size_t i = 0; i < engine_attrs.size(); ++i) {
        if (i > 0)
            info.engine_uri.push_back(';');
        info.engine_uri += engine_attrs[i];
    }
    return info;
}

std::string object_description(const UriInfo& info) {
    std::string out;
    if (info.object)
        out = fmt::format("'{}'", *info.object);
    if (info.id)
        out += fmt::format("{}id {}", out.empty() ? "with " : " with ", hex_bytes(*info.id));
    return out;
}

std::string token_description(const UriInfo& info) {
    if (info.token && !info.manufacturer && !info.serial && !info.model)
        return fmt::format("token '{}'", *info.token);
    std::vector<std::string> parts;
    if (info.token)
        parts.push_back(fmt::format("label '{}'", *info.token));
    if (info.manufacturer)
        parts.push_back(fmt::format("manufacturer '{}'", *info.manufacturer));
    if (info.serial)
        parts.push_back(fmt::format("serial '{}'", *info.serial));
    if (info.model)
        parts.push_back(fmt::format("model '{}'", *info.model));
    if (parts.empty())
        return "any token";
    std::string out = "token with";
    for (std::size_t i = 0; i < parts.size(); ++i)
        out += (i == 0 ? " " : ", ") + parts[i];
    return out;
}

// ---- PIN ---------------------------------------------------------------------

void Pin::set(std::string_view value) {
    wipe();
    value_.assign(value);
    set_ = true;
}

void Pin::wipe() {
    if (!value_.empty())
        OPENSSL_cleanse(value_.data(), value_.size());
    value_.clear();
    set_ = false;
}

Result<void> resolve_pin(const UriInfo& info, const Pkcs11Options& options, Pin& pin) {
    if (info.pin_source)
        return read_pin_source(info, pin);
    if (options.pin_env) {
        const char* value = std::getenv(options.pin_env->c_str());
        if (value == nullptr || *value == '\0')
            return fail(ExitCode::usage, "{}: PIN variable {} is {}", info.display,
                        *options.pin_env, value == nullptr ? "not set" : "empty");
        pin.set(value);
        return {};
    }
    const char* value = std::getenv("SVMKIT_PKCS11_PIN");
    if (value != nullptr && *value != '\0')
        pin.set(value);
    return {};
}

} // namespace svmkit::signer::detail
