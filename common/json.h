/* Json: the owner of a cJSON tree, and the two calls everyone needs. */
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <string_view>

#include "log.h"

namespace posthorn {

struct JsonDeleter {
	void operator()(cJSON *j) const noexcept { cJSON_Delete(j); }
};
using Json = std::unique_ptr<cJSON, JsonDeleter>;

/* Parse at most s.size() bytes; null on a syntax error. */
inline Json json_parse(std::string_view s)
{
	return Json(cJSON_ParseWithLength(s.data(), s.size()));
}

/* One line, no indentation. */
inline std::string json_print(const cJSON *j)
{
	char *text = cJSON_PrintUnformatted(j);
	if (!text)
		fatalx("cJSON: out of memory");
	std::string out(text);
	cJSON_free(text);
	return out;
}

} // namespace posthorn
