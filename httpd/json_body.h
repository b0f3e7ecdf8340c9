/*
 * Bodies of API endpoints: one flat JSON object. Scalars are coerced to
 * strings (numbers in their shortest round-trip form, true/false), null
 * means absent, arrays of scalars are joined with ", ", anything nested is
 * refused. `to_override` is kept aside as a list of addresses.
 */
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "form.h"

namespace posthorn::http {

inline constexpr std::string_view TO_OVERRIDE_FIELD = "to_override";

struct JsonBody {
	Fields fields;
	bool has_to_override = false;
	std::vector<std::string> to_override;
};

/* false with a client-safe reason (never quoting a value). */
bool json_body_parse(std::string_view body, JsonBody &out, std::string &why);
/* Shortest text that reads back as the same double; integers without ".0". */
std::string json_number(double d);

} // namespace posthorn::http
