// The boot.cfg parser (loader/boot_cfg.h). Line by line; a line is the span
// [begin, end) of the input, never NUL-terminated, and every copy into the
// menu is length-checked first.
#include "loader/boot_cfg.h"

#include <string.h>

namespace svmkit::loader {

namespace {

struct Span {
    const char* begin;
    const char* end;
    uint64_t size() const { return static_cast<uint64_t>(end - begin); }
    bool empty() const { return begin == end; }
    bool is(const char* word) const {
        const size_t n = strlen(word);
        return size() == n && memcmp(begin, word, n) == 0;
    }
};

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

Span trim(Span s) {
    while (!s.empty() && is_space(*s.begin))
        ++s.begin;
    while (!s.empty() && is_space(s.end[-1]))
        --s.end;
    return s;
}

// Splits off the first word of `s` (which starts with a non-space); `rest`
// is what follows, trimmed.
Span first_word(Span s, Span* rest) {
    const char* p = s.begin;
    while (p != s.end && !is_space(*p))
        ++p;
    *rest = trim(Span{p, s.end});
    return Span{s.begin, p};
}

// A value in double or single quotes at the start of `s`, or a bare word.
// Sets *after to what follows it. False (with *why) when a quote is unclosed.
bool take_value(Span s, Span* value, Span* after, const char** why) {
    if (!s.empty() && (*s.begin == '"' || *s.begin == '\'')) {
        const char quote = *s.begin;
        const char* p = s.begin + 1;
        while (p != s.end && *p != quote)
            ++p;
        if (p == s.end) {
            *why = "missing closing quote";
            return false;
        }
        *value = Span{s.begin + 1, p};
        *after = trim(Span{p + 1, s.end});
        return true;
    }
    *value = first_word(s, after);
    return true;
}

void copy_field(char* dst, Span s) {
    memcpy(dst, s.begin, static_cast<size_t>(s.size()));
    dst[s.size()] = '\0';
}

// Parses a decimal number that fits 32 bits.
bool parse_u32(Span s, uint32_t* out) {
    if (s.empty() || s.size() > 10)
        return false;
    uint64_t v = 0;
    for (const char* p = s.begin; p != s.end; ++p) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + static_cast<uint64_t>(*p - '0');
    }
    if (v > 0xffffffffu)
        return false;
    *out = static_cast<uint32_t>(v);
    return true;
}

// Parser state between lines. Invariant: open_line != 0 exactly while a
// menuentry is open (its entry is menu->entries[menu->count], not yet
// counted); has_linux says whether that entry has its linux line.
struct Parser {
    BootMenu* menu;
    uint32_t line = 0;
    uint32_t open_line = 0;
    bool has_linux = false;
    uint32_t default_line = 0; // line of `set default`, 0 when absent
    char default_name[kMaxEntryName + 1] = {};
    const char* error = nullptr;
    uint32_t error_line = 0;

    bool fail(const char* message) { return fail_at(line, message); }
    bool fail_at(uint32_t at, const char* message) {
        error = message;
        error_line = at;
        return false;
    }

    bool statement(Span text);
    bool set(Span rest);
    bool menuentry(Span rest);
    bool close_entry(Span rest);
    bool linux_line(Span rest);
};

bool Parser::set(Span rest) {
    const char* eq = rest.begin;
    while (eq != rest.end && *eq != '=')
        ++eq;
    if (eq == rest.end)
        return fail("expected NAME=VALUE after set");
    const Span name{rest.begin, eq};
    Span value{}, after{};
    const char* why = nullptr;
    if (!take_value(Span{eq + 1, rest.end}, &value, &after, &why))
        return fail(why);
    if (!after.empty())
        return fail("text after the value");
    if (name.is("default")) {
        if (default_line != 0)
            return fail("default set twice");
        if (value.empty())
            return fail("empty default entry name");
        if (value.size() > kMaxEntryName)
            return fail("default entry name too long");
        copy_field(default_name, value);
        default_line = line;
        return true;
    }
    if (name.is("timeout")) {
        if (!parse_u32(value, &menu->timeout))
            return fail("timeout is not a number");
        return true;
    }
    return fail("unknown variable");
}

bool Parser::menuentry(Span rest) {
    if (open_line != 0)
        return fail("menuentry inside menuentry");
    if (rest.empty() || (*rest.begin != '"' && *rest.begin != '\''))
        return fail("menuentry name must be quoted");
    Span name{}, after{};
    const char* why = nullptr;
    if (!take_value(rest, &name, &after, &why))
        return fail(why);
    if (name.empty())
        return fail("empty menuentry name");
    if (name.size() > kMaxEntryName)
        return fail("menuentry name too long");
    if (after.empty() || *after.begin != '{')
        return fail("expected '{' after the menuentry name");
    if (!trim(Span{after.begin + 1, after.end}).empty())
        return fail("text after '{'");
    for (uint32_t i = 0; i < menu->count; ++i)
        if (strlen(menu->entries[i].name) == name.size() &&
            memcmp(menu->entries[i].name, name.begin, static_cast<size_t>(name.size())) == 0)
            return fail("duplicate menuentry name");
    if (menu->count == kMaxEntries)
        return fail("too many menuentries");
    BootEntry& e = menu->entries[menu->count];
    copy_field(e.name, name);
    e.image_path[0] = '\0';
    e.cmdline[0] = '\0';
    open_line = line;
    has_linux = false;
    return true;
}

bool Parser::close_entry(Span rest) {
    if (!rest.empty())
        return fail("text after '}'");
    if (open_line == 0)
        return fail("'}' outside menuentry");
    if (!has_linux)
        return fail("menuentry without linux");
    ++menu->count;
    open_line = 0;
    return true;
}

bool Parser::linux_line(Span rest) {
    if (open_line == 0)
        return fail("linux outside menuentry");
    if (has_linux)
        return fail("second linux in one menuentry");
    Span args{};
    const Span path = rest.empty() ? rest : first_word(rest, &args);
    if (path.empty())
        return fail("linux without an image path");
    if (*path.begin != '/')
        return fail("image path must be absolute");
    if (path.size() > kMaxImagePath)
        return fail("image path too long");
    if (args.size() > kMaxCmdline)
        return fail("command line too long");
    BootEntry& e = menu->entries[menu->count];
    copy_field(e.image_path, path);
    copy_field(e.cmdline, args);
    has_linux = true;
    return true;
}

bool Parser::statement(Span text) {
    for (const char* p = text.begin; p != text.end; ++p)
        if (*p == '\0')
            return fail("NUL byte in line");
    const Span s = trim(text);
    if (s.empty() || *s.begin == '#')
        return true;
    Span rest{};
    const Span word = first_word(s, &rest);
    if (word.is("set"))
        return set(rest);
    if (word.is("menuentry"))
        return menuentry(rest);
    if (word.is("}"))
        return close_entry(rest);
    if (word.is("linux"))
        return linux_line(rest);
    if (word.is("initrd"))
        return fail("initrd not supported: the secure image carries its initrd");
    return fail("unknown keyword");
}

} // namespace

bool parse_boot_cfg(const char* text, uint64_t size, BootMenu* menu, BootCfgError* err) {
    Parser ps{menu};
    menu->count = 0;
    menu->default_index = 0;
    menu->timeout = 0;
    bool ok = true;
    if (size > kMaxBootCfgSize) {
        ok = ps.fail_at(0, "boot.cfg too large");
    } else {
        const char* end = text + size;
        const char* p = text;
        while (ok && p != end) {
            const char* eol = p;
            while (eol != end && *eol != '\n')
                ++eol;
            ++ps.line;
            const char* line_end = eol;
            if (line_end != p && line_end[-1] == '\r')
                --line_end;
            ok = ps.statement(Span{p, line_end});
            p = eol == end ? end : eol + 1;
        }
    }
    if (ok && ps.open_line != 0)
        ok = ps.fail_at(ps.open_line, "unterminated menuentry");
    if (ok && menu->count == 0)
        ok = ps.fail_at(0, "no menuentry");
    if (ok && ps.default_line != 0) {
        menu->default_index = find_boot_entry(*menu, ps.default_name);
        if (menu->default_index < 0)
            ok = ps.fail_at(ps.default_line, "default entry not found");
    }
    if (!ok) {
        err->line = ps.error_line;
        err->message = ps.error;
    }
    return ok;
}

int32_t find_boot_entry(const BootMenu& menu, const char* name) {
    const uint32_t count = menu.count < kMaxEntries ? menu.count : kMaxEntries;
    for (uint32_t i = 0; i < count; ++i)
        if (strcmp(menu.entries[i].name, name) == 0)
            return static_cast<int32_t>(i);
    return -1;
}

} // namespace svmkit::loader
