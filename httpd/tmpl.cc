/*
 * Templates: a list of literal and field pieces, compiled once per endpoint.
 */
#include "tmpl.h"

#include "common/config.h"

namespace posthorn::http {

bool Template::compile(std::string_view text, std::string &why)
{
	if (!template_compiles(text, why))
		return false;
	pieces_.clear();
	while (!text.empty()) {
		size_t open = text.find("{{");
		if (open != 0)
			pieces_.push_back({false, std::string(text.substr(0, open))});
		if (open == std::string_view::npos)
			break;
		size_t close = text.find("}}", open + 2);
		pieces_.push_back({true, std::string(text.substr(open + 3, close - open - 3))});
		text.remove_prefix(close + 2);
	}
	return true;
}

std::string Template::render(const Fields &fields) const
{
	std::string out;
	for (const Piece &p : pieces_) {
		if (!p.field) {
			out += p.text;
			continue;
		}
		auto it = fields.find(p.text);
		if (it != fields.end())
			out += it->second;
	}
	return out;
}

void Template::names(std::set<std::string> &out) const
{
	for (const Piece &p : pieces_)
		if (p.field)
			out.insert(p.text);
}

std::string additional_fields(const Fields &fields, const std::set<std::string> &skip)
{
	std::string out;
	for (const auto &[name, value] : fields) {
		if (skip.count(name))
			continue;
		if (out.empty())
			out = "Additional fields:\n";
		out += name;
		out += ": ";
		out += value;
		out += '\n';
	}
	return out;
}

std::string header_text(std::string_view s, size_t max)
{
	std::string out;
	bool space = false;
	for (char c : s) {
		if (c == '\0')
			continue;
		if (c == '\r' || c == '\n' || c == '\t' || c == ' ') {
			space = !out.empty();
			continue;
		}
		if (space)
			out += ' ';
		space = false;
		out += c;
	}
	if (out.size() > max) {
		size_t cut = max;
		while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80)
			cut--;
		out.resize(cut);
	}
	return out;
}

} // namespace posthorn::http
