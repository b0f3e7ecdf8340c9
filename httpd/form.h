/*
 * Request bodies of form endpoints: application/x-www-form-urlencoded and
 * multipart/form-data (RFC 7578), and the Content-Type header they depend
 * on. Pure parsers over string_views: the bytes are untrusted and bounded
 * by the caller (max_body_size); these functions bound counts and sizes.
 */
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace posthorn::http {

inline constexpr size_t FORM_MAX_FIELDS = 1000;
inline constexpr size_t FORM_MAX_NAME = 256;
inline constexpr size_t FORM_MAX_PART_HEADERS = 8192;

/* "type/subtype; name=value; name="quoted"": type lower-cased, parameter names too. */
struct MediaType {
	std::string type;
	std::map<std::string, std::string> params;
};
bool media_type_parse(std::string_view header, MediaType &out);

struct FormField {
	std::string name, value;
};

struct FilePart {
	std::string field;
	std::string filename;      /* as sent, path components removed */
	std::string content_type;  /* lower-cased type/subtype; application/octet-stream if absent */
	std::string data;
};

struct FormData {
	std::vector<FormField> fields;  /* in order; a name may repeat */
	std::vector<FilePart> files;
};

/* %XX and '+' decoding; false on a malformed escape. */
bool percent_decode(std::string_view in, std::string &out);
bool form_urlencoded_parse(std::string_view body, FormData &out, std::string &why);
bool form_multipart_parse(std::string_view body, std::string_view boundary, FormData &out,
    std::string &why);

/* Field name -> value; repeated names joined with ", " in order. */
using Fields = std::map<std::string, std::string>;
Fields fields_join(const std::vector<FormField> &fields);

} // namespace posthorn::http
