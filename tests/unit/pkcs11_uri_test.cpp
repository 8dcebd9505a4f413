// RFC 7512 conformance of svmkit's PKCS#11 URI layer (signer/pkcs11_uri.cpp):
// what p11-kit decodes, what svmkit takes, refuses and hands to the engine,
// and each refusal's exit code and message. No token needed.
#include "signer/pkcs11_internal.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace svmkit;
using namespace svmkit::signer::detail;

namespace {

UriInfo parsed(const std::string& uri) {
    auto info = parse_uri(uri);
    if (!info)
        FAIL(uri << ": " << info.error().message);
    return *info;
}

Error refused(const std::string& uri) {
    auto info = parse_uri(uri);
    if (info)
        FAIL(uri << " was accepted");
    return info.error();
}

void check_refused(const std::string& uri, ExitCode code, const std::string& message) {
    CAPTURE(uri);
    Error e = refused(uri);
    CHECK(e.code == code);
    CHECK(e.message == message);
}

} // namespace

TEST_CASE("pkcs11 URI: attributes are percent-decoded (RFC 7512 section 2.3)") {
    UriInfo info = parsed("pkcs11:token=svmkit%2Dtest;object=rsa%33072;id=%01%aB%00;"
                          "manufacturer=SoftHSM%20project;serial=12%3b4;model=SoftHSM%20v2");
    CHECK(info.token == "svmkit-test");
    CHECK(info.object == "rsa3072");
    CHECK(info.id == std::string("\x01\xab\x00", 3));
    CHECK(info.manufacturer == "SoftHSM project");
    CHECK(info.serial == "12;4");
    CHECK(info.model == "SoftHSM v2");
    CHECK_FALSE(info.pin_source.has_value());
    // The engine gets the attributes as written, joined by ';'.
    CHECK(info.engine_uri == "pkcs11:token=svmkit%2Dtest;object=rsa%33072;id=%01%aB%00;"
                             "manufacturer=SoftHSM%20project;serial=12%3b4;model=SoftHSM%20v2");
    CHECK(info.display == info.engine_uri);
}

TEST_CASE("pkcs11 URI: literal whitespace is part of a value, as libp11 reads it") {
    UriInfo info = parsed("pkcs11:token=release key;object=a\tb");
    CHECK(info.token == "release key");
    CHECK(info.object == "a\tb");
}

TEST_CASE("pkcs11 URI: libp11's three separators split attributes and pin-source is svmkit's") {
    UriInfo info = parsed("pkcs11:token=t;object=k?pin-source=file:/run/pin%20file&type=private");
    CHECK(info.token == "t");
    CHECK(info.object == "k");
    CHECK(info.pin_source == "file:/run/pin file");
    CHECK(info.engine_uri == "pkcs11:token=t;object=k;type=private");
    CHECK(info.display == "pkcs11:token=t;object=k?pin-source=file:/run/pin%20file&type=private");

    UriInfo path_form = parsed("pkcs11:;token=t;;pin-source=/p;object-type=private;");
    CHECK(path_form.pin_source == "/p");
    CHECK(path_form.engine_uri == "pkcs11:token=t;object-type=private");
    CHECK(parsed("pkcs11:object=k;type=priv%61te").engine_uri == "pkcs11:object=k;type=priv%61te");
}

TEST_CASE("pkcs11 URI: the scheme in any case, the engine's in lower case") {
    UriInfo info = parsed("PKCS11:token=t");
    CHECK(info.display == "PKCS11:token=t");
    CHECK(info.engine_uri == "pkcs11:token=t");
    CHECK(parsed("pkcs11:").engine_uri == "pkcs11:");
}

TEST_CASE("pkcs11 URI: token fields are trimmed as the tokens' own fields are") {
    CHECK(parsed("pkcs11:token=").token == "");
    CHECK(parsed("pkcs11:token=abc%20%20").token == "abc");
    CHECK(parsed("pkcs11:token=" + std::string(32, 'x')).token == std::string(32, 'x'));
    CHECK(parsed("pkcs11:serial=" + std::string(16, '7')).serial == std::string(16, '7'));
}

TEST_CASE("pkcs11 URI: refusals name the URI, the attribute and what to do") {
    check_refused("pkcs11:token=t;object=k;pin-value=1234", ExitCode::usage,
                  "pkcs11:token=t;object=k;pin-value=(redacted): PINs in the URI end up in shell "
                  "history and process lists; use pin-source or SVMKIT_PKCS11_PIN");
    check_refused("pkcs11:token=t?pin-value=12%zz&junk", ExitCode::usage,
                  "pkcs11:token=t?pin-value=(redacted)&junk: PINs in the URI end up in shell "
                  "history and process lists; use pin-source or SVMKIT_PKCS11_PIN");
    check_refused("pkcs11:token=t;junk", ExitCode::usage,
                  "pkcs11:token=t;junk: 'junk' is not an attribute=value pair");
    check_refused("pkcs11:=x", ExitCode::usage, "pkcs11:=x: '=x' is not an attribute=value pair");
    check_refused("pkcs11:token=t;id=%zz", ExitCode::usage,
                  "pkcs11:token=t;id=%zz: bad percent-encoding in attribute id");
    check_refused("pkcs11:object=%4", ExitCode::usage,
                  "pkcs11:object=%4: bad percent-encoding in attribute object");
    check_refused("pkcs11:slot-id=%g1", ExitCode::usage,
                  "pkcs11:slot-id=%g1: bad percent-encoding in attribute slot-id");
    check_refused("pkcs11:token=a;object=k;token=b", ExitCode::usage,
                  "pkcs11:token=a;object=k;token=b: attribute token given twice");
    check_refused("pkcs11:type=private;object-type=private", ExitCode::usage,
                  "pkcs11:type=private;object-type=private: attribute object-type given twice");
    check_refused("pkcs11:object=k;type=public", ExitCode::usage,
                  "pkcs11:object=k;type=public: names a public key; signing needs type=private "
                  "(or no type)");
    check_refused("pkcs11:object=k;type=cert", ExitCode::usage,
                  "pkcs11:object=k;type=cert: names a certificate; signing needs type=private "
                  "(or no type)");
    check_refused("pkcs11:object=k;type=secret-key", ExitCode::usage,
                  "pkcs11:object=k;type=secret-key: unknown object type 'secret-key'");
    check_refused("pkcs11:object=k;type=bogus", ExitCode::usage,
                  "pkcs11:object=k;type=bogus: unknown object type 'bogus'");
    check_refused("pkcs11:object=k;type=%70ublic", ExitCode::usage,
                  "pkcs11:object=k;type=%70ublic: names a public key; signing needs "
                  "type=private (or no type)");
    check_refused("pkcs11:object=k;type=%zz", ExitCode::usage,
                  "pkcs11:object=k;type=%zz: bad percent-encoding in attribute type");
    check_refused("pkcs11:object=k?module-path=%2", ExitCode::usage,
                  "pkcs11:object=k?module-path=%2: bad percent-encoding in attribute module-path");
    check_refused("pkcs11:object=k?module-path=/x.so", ExitCode::usage,
                  "pkcs11:object=k?module-path=/x.so: module-path in the URI is not supported; "
                  "pass --pkcs11-module or set SVMKIT_PKCS11_MODULE");
    check_refused("pkcs11:object=k;slot-id=3", ExitCode::usage,
                  "pkcs11:object=k;slot-id=3: unsupported attribute slot-id; the pkcs11 engine "
                  "understands token, manufacturer, serial, model, object, id, type and "
                  "pin-source");
    check_refused("pkcs11:objecttype=private", ExitCode::usage,
                  "pkcs11:objecttype=private: unsupported attribute objecttype; the pkcs11 engine "
                  "understands token, manufacturer, serial, model, object, id, type and "
                  "pin-source");
}

TEST_CASE("pkcs11 URI: a token field longer than PKCS#11's can match no token") {
    const std::string label(33, 'x');
    check_refused("pkcs11:token=" + label, ExitCode::malformed,
                  "pkcs11:token=" + label + ": token '" + label +
                      "' is longer than the 32 bytes of a PKCS#11 token's field; no token has it");
    const std::string serial(17, '1');
    check_refused("pkcs11:serial=" + serial, ExitCode::malformed,
                  "pkcs11:serial=" + serial + ": serial '" + serial +
                      "' is longer than the 16 bytes of a PKCS#11 token's field; no token has it");
}

TEST_CASE("pkcs11 URI: descriptions for messages") {
    CHECK(object_description(parsed("pkcs11:object=ec384;id=%01")) == "'ec384' with id 01");
    CHECK(object_description(parsed("pkcs11:id=%0a%ff")) == "with id 0aff");
    CHECK(object_description(parsed("pkcs11:object=k")) == "'k'");
    CHECK(object_description(parsed("pkcs11:token=t")) == "");
    CHECK(token_description(parsed("pkcs11:token=t")) == "token 't'");
    CHECK(token_description(parsed("pkcs11:token=t;serial=42")) ==
          "token with label 't', serial '42'");
    CHECK(token_description(parsed("pkcs11:manufacturer=m;model=x")) ==
          "token with manufacturer 'm', model 'x'");
    CHECK(token_description(parsed("pkcs11:object=k")) == "any token");
}
