/*
 * Endpoint templates: `{{.field}}` substitution (a missing field renders
 * empty) and the `Additional fields:` block for fields the templates do not
 * use. The config module already checked that every template compiles.
 */
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "form.h"

namespace posthorn::http {

class Template {
public:
	bool compile(std::string_view text, std::string &why);
	std::string render(const Fields &fields) const;
	/* Field names the template refers to. */
	void names(std::set<std::string> &out) const;
	bool empty() const { return pieces_.empty(); }

private:
	struct Piece {
		bool field;
		std::string text; /* literal text, or the field name */
	};
	std::vector<Piece> pieces_;
};

/* "Additional fields:\nname: value\n..." sorted by name, skipping `skip`; "" when none. */
std::string additional_fields(const Fields &fields, const std::set<std::string> &skip);
/* A header-bound value: CR, LF, TAB and runs of them become one space; NUL dropped; trimmed;
 * cut at `max` bytes on a UTF-8 boundary. */
std::string header_text(std::string_view s, size_t max = 900);

} // namespace posthorn::http
