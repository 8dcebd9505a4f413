#include "tamper/matrix.hpp"

#include <algorithm>
#include <cctype>

namespace svmkit::tamper {

namespace {

bool names_any(const std::string& text, const std::vector<std::string>& names) {
    if (names.empty())
        return true;
    return std::any_of(names.begin(), names.end(),
                       [&](const std::string& n) { return text.find(n) != std::string::npos; });
}

std::string boot_text(const BootResult& b) {
    return b.verdict() + ": " + b.message;
}

bool verify_named(const Case& c, const VerifyResult& v) {
    return c.reader_must_refuse ? !v.opened : names_any(v.message, c.verify_names);
}

// A boot refused by the reader reports the reader's message (as verify does);
// otherwise the machine's verdict must name the cause.
bool boot_named(const Case& c, const BootResult& b) {
    if (b.stage == BootResult::Stage::reader_refused)
        return c.reader_must_refuse || names_any(b.message, c.verify_names);
    return !c.reader_must_refuse && names_any(boot_text(b), c.boot_names);
}

std::string describe(const Case& c, const Outcome& o) {
    std::string s = fmt::format("[{}] {}\n      verify: {} ({})", c.row, c.what,
                                o.verify.accepted ? "ACCEPTED" : "rejected", o.verify.message);
    if (o.boot)
        s += fmt::format("\n      boot:   {}: {}", o.boot->verdict(), o.boot->message);
    if (o.uv_direct)
        s += fmt::format("\n      UV:     {}: {}", o.uv_direct->verdict(), o.uv_direct->message);
    return s;
}

bool is_hex_digit(char ch) {
    return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
}

// Most common first, then by name.
std::vector<std::pair<std::string, std::size_t>>
by_count(const std::map<std::string, std::size_t>& m) {
    std::vector<std::pair<std::string, std::size_t>> v(m.begin(), m.end());
    std::stable_sort(v.begin(), v.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    return v;
}

} // namespace

std::string reason_of(const std::string& message) {
    std::string m = message.substr(0, message.find("; "));
    // Drop the file name the reader puts first.
    if (!m.empty() && m.front() == '/') {
        const auto colon = m.find(": ");
        if (colon != std::string::npos)
            m = m.substr(colon + 2);
    }
    // Names made of flipped bytes ("unknown section 'kernel:dtb'") vary without
    // telling more: keep only quoted section names svmkit writes.
    for (std::size_t open = m.find('\''); open != std::string::npos;
         open = m.find('\'', open + 1)) {
        const std::size_t close = m.find('\'', open + 1);
        if (close == std::string::npos)
            break;
        const std::string quoted = m.substr(open + 1, close - open - 1);
        static const char* const kKnown[] = {
            ".text",          ".rodata",         ".kernel:esm_blob", ".kernel:vmlinux.strip",
            ".kernel:initrd", ".kernel:cmdline", ".kernel:dtb",      ".shstrtab"};
        if (std::find(std::begin(kKnown), std::end(kKnown), quoted) == std::end(kKnown))
            m.replace(open + 1, quoted.size(), "...");
        open = m.find('\'', open + 1);
    }
    std::string out;
    for (std::size_t i = 0; i < m.size();) {
        const bool hex_prefix = m.compare(i, 2, "0x") == 0;
        std::size_t j = i + (hex_prefix ? 2 : 0);
        std::size_t digits = 0;
        bool decimal = true;
        while (j < m.size() && is_hex_digit(m[j])) {
            decimal = decimal && std::isdigit(static_cast<unsigned char>(m[j])) != 0;
            ++j;
            ++digits;
        }
        const bool word_start = i == 0 || !std::isalnum(static_cast<unsigned char>(m[i - 1]));
        const bool word_end = j == m.size() || !std::isalnum(static_cast<unsigned char>(m[j]));
        if (word_start && word_end && digits > 0 && (hex_prefix || decimal || digits >= 16)) {
            out += "N";
            i = j;
        } else {
            out += m[i++];
        }
    }
    if (out.size() > 110)
        out = out.substr(0, 107) + "...";
    return out;
}

RowStats& Matrix::row(const std::string& name) {
    for (RowStats& r : rows_)
        if (r.row == name)
            return r;
    rows_.push_back(RowStats{});
    rows_.back().row = name;
    return rows_.back();
}

std::size_t Matrix::total_cases() const {
    std::size_t n = 0;
    for (const RowStats& r : rows_)
        n += r.cases;
    return n;
}

void Matrix::add(const Case& c, const Outcome& o) {
    RowStats& r = row(c.row);
    ++r.cases;
    r.covered += c.covered ? 1 : 0;
    r.verify_rejected += o.verify.accepted ? 0 : 1;
    r.verify_reasons[o.verify.accepted ? "ACCEPTED" : reason_of(o.verify.message)]++;
    const bool boot_accepted = o.boot && o.boot->accepted();
    const bool uv_accepted = o.uv_direct && o.uv_direct->accepted() && c.uv_covered;
    r.uncovered_accepted += o.uv_direct && o.uv_direct->accepted() && !c.uv_covered ? 1 : 0;
    if (o.boot) {
        ++r.boot_run;
        r.boot_rejected += o.boot->accepted() ? 0 : 1;
        r.machine_boots += o.machine_booted ? 1 : 0;
        r.boot_reasons[o.boot->verdict()]++;
    }
    if (o.uv_direct) {
        ++r.uv_run;
        r.uv_rejected += o.uv_direct->accepted() ? 0 : 1;
        r.uv_reasons[o.uv_direct->verdict()]++;
    }
    const bool any_accepted = o.verify.accepted || boot_accepted || uv_accepted;
    // svmkit boot itself must never crash or fail as a platform, whatever the image.
    for (const std::optional<BootResult>* b : {&o.boot, &o.uv_direct})
        if (*b && ((*b)->stage == BootResult::Stage::harness_crashed ||
                   (*b)->stage == BootResult::Stage::platform_error))
            violations_.push_back("boot broke: " + describe(c, o));

    if (c.same_as != nullptr) {
        ++r.same_as_signed;
        const bool want = c.same_as->accepted;
        identical_.push_back(fmt::format(
            "{} = image {}: verify {}, boot {} ({} as image {})", c.what, c.same_as->label,
            o.verify.accepted ? "accepted" : reason_of(o.verify.message),
            o.boot ? o.boot->verdict() : "not run", want ? "accepted" : "rejected",
            c.same_as->label));
        if (o.verify.accepted != want || (o.boot && o.boot->accepted() != want))
            violations_.push_back(
                fmt::format("not judged like the identical signed image {}: ", c.same_as->label) +
                describe(c, o));
        return;
    }
    if (any_accepted) {
        ++r.accepted_covered;
        violations_.push_back("ACCEPTED: " + describe(c, o));
        return;
    }
    // Rejected: does each report say what was wrong?
    const bool named = verify_named(c, o.verify) && (!o.boot || boot_named(c, *o.boot)) &&
                       (!o.uv_direct || !c.uv_covered || boot_named(c, *o.uv_direct));
    if (!named) {
        ++r.misdiagnosed;
        violations_.push_back("rejected without naming the cause: " + describe(c, o));
    }
}

std::string Matrix::table() const {
    std::string out = fmt::format("{:<40} {:>7} {:>7} {:>9} {:>13} {:>11} {:>9} {:>9}\n",
                                  "mutation class", "cases", "covered", "verify", "boot (machine)",
                                  "UV alone", "accepted", "misnamed");
    out += fmt::format("{:<40} {:>7} {:>7} {:>9} {:>13} {:>11} {:>9} {:>9}\n", "", "", "",
                       "rejected", "rejected/run", "rej/run", "covered", "");
    RowStats total;
    for (const RowStats& r : rows_) {
        out += fmt::format("{:<40} {:>7} {:>7} {:>9} {:>7}/{:<5} {:>5}/{:<5} {:>9} {:>9}\n", r.row,
                           r.cases, r.covered, r.verify_rejected, r.boot_rejected, r.boot_run,
                           r.uv_rejected, r.uv_run, r.accepted_covered, r.misdiagnosed);
        total.cases += r.cases;
        total.covered += r.covered;
        total.verify_rejected += r.verify_rejected;
        total.boot_rejected += r.boot_rejected;
        total.boot_run += r.boot_run;
        total.machine_boots += r.machine_boots;
        total.uv_rejected += r.uv_rejected;
        total.uv_run += r.uv_run;
        total.accepted_covered += r.accepted_covered;
        total.misdiagnosed += r.misdiagnosed;
        total.uncovered_accepted += r.uncovered_accepted;
        total.same_as_signed += r.same_as_signed;
    }
    out += fmt::format("{:<40} {:>7} {:>7} {:>9} {:>7}/{:<5} {:>5}/{:<5} {:>9} {:>9}\n", "total",
                       total.cases, total.covered, total.verify_rejected, total.boot_rejected,
                       total.boot_run, total.uv_rejected, total.uv_run, total.accepted_covered,
                       total.misdiagnosed);
    out += fmt::format("machine boots: {}; uncovered changes accepted: {}; identical to a signed "
                       "image: {}\n",
                       total.machine_boots + total.uv_run, total.uncovered_accepted,
                       total.same_as_signed);
    return out;
}

std::string Matrix::markdown() const {
    std::string out =
        "| mutation class | cases | covered | rejected by verify | boot run | rejected by boot | "
        "machine boots | UV alone run | rejected by UV alone | accepted (covered) | misnamed |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    RowStats t;
    for (const RowStats& r : rows_) {
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.row,
                           r.cases, r.covered, r.verify_rejected, r.boot_run, r.boot_rejected,
                           r.machine_boots, r.uv_run, r.uv_rejected, r.accepted_covered,
                           r.misdiagnosed);
        t.cases += r.cases;
        t.covered += r.covered;
        t.verify_rejected += r.verify_rejected;
        t.boot_run += r.boot_run;
        t.boot_rejected += r.boot_rejected;
        t.machine_boots += r.machine_boots;
        t.uv_run += r.uv_run;
        t.uv_rejected += r.uv_rejected;
        t.accepted_covered += r.accepted_covered;
        t.misdiagnosed += r.misdiagnosed;
    }
    out +=
        fmt::format("| **total** | **{}** | **{}** | **{}** | **{}** | **{}** | **{}** | **{}** | "
                    "**{}** | **{}** | **{}** |\n",
                    t.cases, t.covered, t.verify_rejected, t.boot_run, t.boot_rejected,
                    t.machine_boots, t.uv_run, t.uv_rejected, t.accepted_covered, t.misdiagnosed);
    out += "\n### Why each row was rejected\n\n";
    for (const RowStats& r : rows_) {
        out += fmt::format("**{}** ({} cases)\n\n", r.row, r.cases);
        auto list = [&](const char* who, const std::map<std::string, std::size_t>& m) {
            if (m.empty())
                return;
            out += fmt::format("- {}: ", who);
            bool first = true;
            std::size_t shown = 0, rest = 0;
            for (const auto& [reason, n] : by_count(m)) {
                if (shown == 8) {
                    rest += n;
                    continue;
                }
                out += fmt::format("{}`{}` ({})", first ? "" : "; ", reason, n);
                first = false;
                ++shown;
            }
            if (rest > 0)
                out += fmt::format("; {} other causes ({})", m.size() - shown, rest);
            out += "\n";
        };
        list("verify", r.verify_reasons);
        list("boot", r.boot_reasons);
        list("ultravisor alone", r.uv_reasons);
        out += "\n";
    }
    return out;
}

} // namespace svmkit::tamper
