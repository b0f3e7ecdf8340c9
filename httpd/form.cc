/*
 * Form bodies. Multipart framing follows RFC 2046 section 5.1.1: parts are
 * separated by CRLF "--" boundary; the last delimiter ends in "--". Each
 * part's headers end at the first empty line; only Content-Disposition
 * (name, filename) and Content-Type matter.
 */
#include "form.h"
#include "common/text.h"

#include <cstring>

namespace posthorn::http {

namespace {

std::string lower(std::string_view s)
{
	std::string out(s);
	for (char &c : out)
		if (c >= 'A' && c <= 'Z')
			c = char(c - 'A' + 'a');
	return out;
}

bool token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

bool is_token(std::string_view s)
{
	if (s.empty())
		return false;
	for (unsigned char c : s)
		if (!token_char(c))
			return false;
	return true;
}

/* A quoted-string starting at s[0] == '"'; advances s past it. */
bool take_quoted(std::string_view &s, std::string &out)
{
	out.clear();
	for (size_t i = 1; i < s.size(); i++) {
		char c = s[i];
		if (c == '"') {
			s.remove_prefix(i + 1);
			return true;
		}
		if (c == '\\' && i + 1 < s.size())
			c = s[++i];
		if (c == '\r' || c == '\n' || c == '\0')
			return false;
		out += c;
	}
	return false;
}

/* "; name=value" pairs after the media type or disposition type. */
bool take_params(std::string_view s, std::map<std::string, std::string> &params)
{
	while (!(s = trim(s)).empty()) {
		if (s.front() != ';')
			return false;
		s = trim(s.substr(1));
		if (s.empty())
			break; /* a trailing ';' is common and harmless */
		size_t eq = s.find('=');
		if (eq == std::string_view::npos || !is_token(trim(s.substr(0, eq))))
			return false;
		std::string name = lower(trim(s.substr(0, eq)));
		s = trim(s.substr(eq + 1));
		std::string value;
		if (!s.empty() && s.front() == '"') {
			if (!take_quoted(s, value))
				return false;
		} else {
			size_t end = s.find(';');
			value = std::string(trim(s.substr(0, end)));
			s = end == std::string_view::npos ? std::string_view() : s.substr(end);
		}
		if (params.count(name))
			return false; /* a repeated parameter is ambiguous */
		params[name] = value;
	}
	return true;
}

/* Browsers send the last path component, but old ones sent C:\path\name. */
std::string basename_of(std::string_view f)
{
	size_t cut = f.find_last_of("/\\");
	if (cut != std::string_view::npos)
		f.remove_prefix(cut + 1);
	return std::string(f);
}

struct PartHeaders {
	std::string name;
	bool has_filename = false;
	std::string filename;
	std::string content_type;
};

bool header_line(std::string_view line, PartHeaders &h, std::string &why)
{
	size_t colon = line.find(':');
	if (colon == std::string_view::npos) {
		why = "multipart: malformed part header";
		return false;
	}
	std::string name = lower(trim(line.substr(0, colon)));
	std::string_view value = trim(line.substr(colon + 1));
	if (name == "content-disposition") {
		size_t semi = value.find(';');
		std::map<std::string, std::string> params;
		if (lower(trim(value.substr(0, semi))) != "form-data" ||
		    (semi != std::string_view::npos && !take_params(value.substr(semi), params)) ||
		    !params.count("name")) {
			why = "multipart: part without a form-data name";
			return false;
		}
		h.name = params["name"];
		if (params.count("filename")) {
			h.has_filename = true;
			h.filename = basename_of(params["filename"]);
		}
	} else if (name == "content-type") {
		MediaType mt;
		if (!media_type_parse(value, mt)) {
			why = "multipart: malformed part content type";
			return false;
		}
		h.content_type = mt.type;
	}
	return true;
}

bool part_headers(std::string_view block, PartHeaders &h, std::string &why)
{
	while (!block.empty()) {
		size_t eol = block.find("\r\n");
		std::string_view line = block.substr(0, eol);
		block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
		if (!header_line(line, h, why))
			return false;
	}
	if (h.name.empty() || h.name.size() > FORM_MAX_NAME) {
		why = "multipart: part without a valid name";
		return false;
	}
	return true;
}

bool add_part(const PartHeaders &h, std::string_view content, FormData &out)
{
	if (out.fields.size() + out.files.size() >= FORM_MAX_FIELDS)
		return false;
	if (!h.has_filename) {
		out.fields.push_back({h.name, std::string(content)});
		return true;
	}
	if (h.filename.empty() && content.empty())
		return true; /* an empty <input type=file>: nothing was chosen */
	FilePart f;
	f.field = h.name;
	f.filename = h.filename;
	f.content_type = h.content_type.empty() ? "application/octet-stream" : h.content_type;
	f.data = std::string(content);
	out.files.push_back(std::move(f));
	return true;
}

/* After a delimiter: "--" ends the body, CRLF starts a part (transport padding allowed). */
bool after_delimiter(std::string_view &rest, bool &last)
{
	if (rest.substr(0, 2) == "--") {
		last = true;
		return true;
	}
	while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
		rest.remove_prefix(1);
	if (rest.substr(0, 2) != "\r\n")
		return false;
	rest.remove_prefix(2);
	last = false;
	return true;
}

} // namespace

bool media_type_parse(std::string_view header, MediaType &out)
{
	size_t semi = header.find(';');
	std::string_view type = trim(header.substr(0, semi));
	size_t slash = type.find('/');
	if (slash == std::string_view::npos || !is_token(type.substr(0, slash)) ||
	    !is_token(type.substr(slash + 1)))
		return false;
	MediaType mt;
	mt.type = lower(type);
	if (semi != std::string_view::npos && !take_params(header.substr(semi), mt.params))
		return false;
	out = std::move(mt);
	return true;
}

bool percent_decode(std::string_view in, std::string &out)
{
	out.clear();
	out.reserve(in.size());
	for (size_t i = 0; i < in.size(); i++) {
		char c = in[i];
		if (c == '+') {
			out += ' ';
		} else if (c == '%') {
			if (i + 2 >= in.size())
				return false;
			int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			out += char(hi << 4 | lo);
			i += 2;
		} else {
			out += c;
		}
	}
	return true;
}

bool form_urlencoded_parse(std::string_view body, FormData &out, std::string &why)
{
	while (!body.empty()) {
		size_t amp = body.find('&');
		std::string_view pair = body.substr(0, amp);
		body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
		if (pair.empty())
			continue;
		if (out.fields.size() >= FORM_MAX_FIELDS) {
			why = "too many fields";
			return false;
		}
		size_t eq = pair.find('=');
		FormField f;
		if (!percent_decode(pair.substr(0, eq), f.name) ||
		    (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), f.value))) {
			why = "malformed percent-encoding";
			return false;
		}
		if (f.name.empty() || f.name.size() > FORM_MAX_NAME) {
			why = "empty or over-long field name";
			return false;
		}
		out.fields.push_back(std::move(f));
	}
	return true;
}

bool form_multipart_parse(std::string_view body, std::string_view boundary, FormData &out,
    std::string &why)
{
	why = "multipart: malformed body";
	if (boundary.empty() || boundary.size() > 70)
		return false;
	std::string delim = "--" + std::string(boundary);
	/* The first delimiter may be at the very start or after a preamble. */
	size_t at = body.substr(0, delim.size()) == delim ? 0 : body.find("\r\n" + delim);
	if (at == std::string_view::npos)
		return false;
	std::string_view rest = body.substr(at + (at == 0 ? 0 : 2) + delim.size());
	std::string next = "\r\n" + delim;
	for (;;) {
		bool last = false;
		if (!after_delimiter(rest, last))
			return false;
		if (last)
			return true; /* the epilogue is ignored */
		/* Every form-data part has at least Content-Disposition. */
		size_t hend = rest.find("\r\n\r\n");
		if (rest.substr(0, 2) == "\r\n" || hend == std::string_view::npos ||
		    hend > FORM_MAX_PART_HEADERS)
			return false;
		std::string_view block = rest.substr(0, hend);
		rest.remove_prefix(hend + 4);
		PartHeaders h;
		if (!part_headers(block, h, why))
			return false;
		size_t end = rest.find(next);
		if (end == std::string_view::npos) {
			why = "multipart: missing closing boundary";
			return false;
		}
		if (!add_part(h, rest.substr(0, end), out)) {
			why = "too many fields";
			return false;
		}
		rest.remove_prefix(end + next.size());
	}
}

Fields fields_join(const std::vector<FormField> &fields)
{
	Fields out;
	for (const FormField &f : fields) {
		auto [it, fresh] = out.try_emplace(f.name, f.value);
		if (!fresh) {
			it->second += ", ";
			it->second += f.value;
		}
	}
	return out;
}

} // namespace posthorn::http
